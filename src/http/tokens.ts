/**
 * The bearer tokens the API accepts: one from RTMANAGER_INTERNAL_TOKEN, or
 * one or two lines of RTMANAGER_INTERNAL_TOKEN_FILE (the second is the
 * previous token, still valid during a rotation). The file is re-read when
 * its identity or size or mtime changes (a Kubernetes Secret volume swaps a
 * symlink; stat follows it), by a cheap stat poll off the request path.
 *
 * The file is the truth while running: emptied, deleted or unusable, it
 * means no valid token (every request is refused, with an error logged),
 * so emptying it is an emergency revocation that fails closed. At start an
 * unusable file stops start-up instead.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import type { Logger } from "../log.js";
import { RtmError } from "../model/errors.js";

export interface TokenCheck {
  /** True when `presented` is one of the valid tokens; constant time in the token's value. */
  accepts(presented: string): boolean;
  close(): void;
}

const MAX_TOKENS = 2;
const sha256 = (text: string): Buffer => createHash("sha256").update(text).digest();

/** Digests are computed when tokens change, so a request hashes only what it presents. */
class Digests {
  private digests: Buffer[] = [];

  set(tokens: readonly string[]): void {
    this.digests = tokens.map(sha256);
  }

  accepts(presented: string): boolean {
    const digest = sha256(presented);
    let ok = false;
    // Every digest is compared, so the time does not tell which one matched.
    for (const d of this.digests) ok = timingSafeEqual(digest, d) || ok;
    return ok;
  }
}

export function staticTokens(token: string): TokenCheck {
  const digests = new Digests();
  digests.set([token]);
  return { accepts: (p) => digests.accepts(p), close: () => {} };
}

/** Shorter tokens are refused unless RTMANAGER_ALLOW_SHORT_TOKENS=true. */
export const MIN_TOKEN_LENGTH = 32;
/** The example Secret's placeholder (deploy/kustomize/base/secrets.example.yaml) and its kin: never a token. */
const PLACEHOLDER = /change-?me/i;

/** null when `token` may be a bearer token, else why not (never quoting it). */
export function tokenProblem(token: string, minLength: number): string | null {
  if (PLACEHOLDER.test(token)) return "is the example's CHANGE-ME placeholder; generate one with `openssl rand -hex 32`";
  if (token.length < minLength) return `is ${token.length} characters; at least ${minLength} are required (openssl rand -hex 32), or set RTMANAGER_ALLOW_SHORT_TOKENS=true`;
  return null;
}

function parseTokenFile(text: string, file: string, setting: string, minLength: number): string[] {
  const tokens = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "");
  if (tokens.length === 0) throw new RtmError("start_config_invalid", `${setting} ${file} holds no token`);
  if (tokens.length > MAX_TOKENS) {
    throw new RtmError("start_config_invalid", `${setting} ${file} holds ${tokens.length} lines; at most ${MAX_TOKENS} tokens (current, previous)`);
  }
  if (tokens.some((t) => /\s/.test(t))) throw new RtmError("start_config_invalid", `${setting} ${file}: a token must not contain whitespace`);
  tokens.forEach((t, i) => {
    const problem = tokenProblem(t, minLength);
    if (problem) throw new RtmError("start_config_invalid", `${setting} ${file}: token ${i + 1} ${problem}`);
  });
  return tokens;
}

const identity = (st: fs.Stats): string => `${st.ino}:${st.size}:${st.mtimeMs}`;

export interface TokenFileOptions {
  /** The setting that names the file, for messages. */
  setting?: string;
  minLength?: number;
  pollMs?: number;
}

/** Reads the file now (throwing when it is unusable: start-up stops) and re-reads it on change. */
export function fileTokens(file: string, logger: Logger, options: TokenFileOptions = {}): TokenCheck {
  const { setting = "RTMANAGER_INTERNAL_TOKEN_FILE", minLength = MIN_TOKEN_LENGTH, pollMs = 2000 } = options;
  const digests = new Digests();
  let seen = identity(fs.statSync(file));
  digests.set(parseTokenFile(fs.readFileSync(file, "utf8"), file, setting, minLength));
  const reload = (): void => {
    let now: string;
    try {
      now = identity(fs.statSync(file));
    } catch (err) {
      now = `missing:${(err as NodeJS.ErrnoException).code ?? "?"}`;
    }
    if (now === seen) return;
    seen = now;
    try {
      const tokens = parseTokenFile(fs.readFileSync(file, "utf8"), file, setting, minLength);
      digests.set(tokens);
      logger.info({ file, tokens: tokens.length }, "bearer tokens reloaded");
    } catch (err) {
      // Fail closed: emptying or deleting the file is how a leaked token is revoked in a hurry.
      digests.set([]);
      logger.error({ err, file, setting }, `${setting} is empty, missing or unusable: NO token is valid now, every authenticated request is refused until the file holds a token`);
    }
  };
  const timer = setInterval(reload, pollMs);
  timer.unref();
  return { accepts: (p) => digests.accepts(p), close: () => clearInterval(timer) };
}
