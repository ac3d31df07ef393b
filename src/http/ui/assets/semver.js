// The patch rule as the API applies it (src/model/imageRef.ts
// assertPatchAllowed): the new image must carry a semver tag and keep the
// repository and major.minor of the current one. Checked here so the dialog
// says so before sending; the API checks again and its answer is shown.

const SEMVER = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

export function parseImageRef(ref) {
  let rest = ref;
  const at = rest.indexOf("@");
  if (at >= 0) rest = rest.slice(0, at);
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  return colon > slash ? { repository: rest.slice(0, colon), tag: rest.slice(colon + 1) } : { repository: rest, tag: null };
}

function version(ref) {
  const { tag } = parseImageRef(ref);
  const m = tag === null ? null : SEMVER.exec(tag);
  return m ? { major: Number(m[1]), minor: Number(m[2]), text: tag } : null;
}

/** null when the patch is allowed, else the reason, worded like the API's error. */
export function patchProblem(fromRef, toRef) {
  if (toRef === "") return "type the new image";
  const to = version(toRef);
  if (!to) return `image_ref_not_semver: ${JSON.stringify(toRef)} does not carry a semver tag (e.g. :1.4.2)`;
  const from = version(fromRef);
  if (!from) return `semver_patch_only: current image ${JSON.stringify(fromRef)} has no semver tag; stop and start with the new image instead`;
  const fromRepo = parseImageRef(fromRef).repository;
  const toRepo = parseImageRef(toRef).repository;
  if (fromRepo !== toRepo) return `semver_patch_only: patch must keep the repository ${fromRepo}; got ${toRepo}`;
  if (from.major !== to.major || from.minor !== to.minor) return `semver_patch_only: patch must stay within ${from.major}.${from.minor}.x`;
  return null;
}
