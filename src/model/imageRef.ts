import semver from "semver";
import { RtmError } from "./errors.js";

/**
 * Docker reference: [registry[:port]/]path[:tag][@digest]. Checked loosely
 * (Docker itself is the final judge) but strictly enough that nothing with
 * whitespace, control characters or shell metacharacters reaches the engine.
 */
export const IMAGE_REF_PATTERN =
  /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;
export const IMAGE_REF_MAX_LENGTH = 255;

export interface ParsedImageRef {
  /** Everything before the tag: registry and repository path. */
  repository: string;
  tag: string | null;
  digest: string | null;
}

export function parseImageRef(ref: string): ParsedImageRef {
  let rest = ref;
  let digest: string | null = null;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  // A ':' after the last '/' is a tag; one before it belongs to a registry port.
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) {
    return { repository: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
  }
  return { repository: rest, tag: null, digest };
}

/** The semver version carried by the tag, or null when the tag is not one. */
export function imageVersion(ref: string): semver.SemVer | null {
  const { tag } = parseImageRef(ref);
  if (!tag) return null;
  // Tags commonly carry a leading 'v'; semver.parse does not accept it.
  return semver.parse(tag.startsWith("v") ? tag.slice(1) : tag);
}

/**
 * Patch is allowed only to another version of the same repository within the
 * same major.minor line. Throws the contract's codes otherwise.
 */
export function assertPatchAllowed(fromRef: string, toRef: string): void {
  const to = imageVersion(toRef);
  if (!to) {
    throw new RtmError("image_ref_not_semver", `image_ref ${JSON.stringify(toRef)} does not carry a semver tag (e.g. :1.4.2)`);
  }
  const from = imageVersion(fromRef);
  if (!from) {
    throw new RtmError(
      "semver_patch_only",
      `current image ${JSON.stringify(fromRef)} has no semver tag, so no patch line can be established; stop and start with the new image instead`,
    );
  }
  const fromRepo = parseImageRef(fromRef).repository;
  const toRepo = parseImageRef(toRef).repository;
  if (fromRepo !== toRepo) {
    throw new RtmError("semver_patch_only", `patch must keep the repository ${fromRepo}; got ${toRepo}`);
  }
  if (from.major !== to.major || from.minor !== to.minor) {
    throw new RtmError(
      "semver_patch_only",
      `patch must stay within ${from.major}.${from.minor}.x; ${from.version} -> ${to.version} crosses the line`,
    );
  }
}
