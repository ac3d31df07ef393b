/**
 * The bearer tokens the API accepts: one from RTMANAGER_INTERNAL_TOKEN, or
 * one or two lines of RTMANAGER_INTERNAL_TOKEN_FILE (the second is the
 * previous token, still valid during a rotation). The file is re-read when
 * its identity or size or mtime changes (a Kubernetes Secret volume swaps a
 * symlink; stat follows it), by a cheap stat poll off the request path.
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

function parseTokenFile(text: string, file: string): string[] {
  const tokens = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "");
  if (tokens.length === 0) throw new RtmError("start_config_invalid", `RTMANAGER_INTERNAL_TOKEN_FILE ${file} holds no token`);
  if (tokens.length > MAX_TOKENS) {
    throw new RtmError("start_config_invalid", `RTMANAGER_INTERNAL_TOKEN_FILE ${file} holds ${tokens.length} lines; at most ${MAX_TOKENS} tokens (current, previous)`);
  }
  if (tokens.some((t) => /\s/.test(t))) throw new RtmError("start_config_invalid", `RTMANAGER_INTERNAL_TOKEN_FILE ${file}: a token must not contain whitespace`);
  return tokens;
}

const identity = (st: fs.Stats): string => `${st.ino}:${st.size}:${st.mtimeMs}`;

/** Reads the file now (throwing when it is unusable: start-up stops) and re-reads it on change. */
export function fileTokens(file: string, logger: Logger, pollMs = 2000): TokenCheck {
  const digests = new Digests();
  let seen = identity(fs.statSync(file));
  digests.set(parseTokenFile(fs.readFileSync(file, "utf8"), file));
  let failing = false;
  const reload = (): void => {
    try {
      const now = identity(fs.statSync(file));
      if (now === seen) return;
      const tokens = parseTokenFile(fs.readFileSync(file, "utf8"), file);
      seen = now;
      digests.set(tokens);
      failing = false;
      logger.info({ file, tokens: tokens.length }, "bearer tokens reloaded");
    } catch (err) {
      // The tokens read last stay valid: a half-written file must not lock everyone out.
      if (!failing) logger.warn({ err, file }, "bearer token file unreadable; keeping the tokens read last");
      failing = true;
    }
  };
  const timer = setInterval(reload, pollMs);
  timer.unref();
  return { accepts: (p) => digests.accepts(p), close: () => clearInterval(timer) };
}
