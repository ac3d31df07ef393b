/**
 * Where rtmctl's bearer token comes from, first found wins: --token,
 * --token-file, RTMANAGER_INTERNAL_TOKEN, RTMCTL_TOKEN_FILE, then
 * RTMANAGER_INTERNAL_TOKEN_FILE: the server's own setting, so rtmctl run
 * inside rtmanager's container (`kubectl exec`) reads the mounted Secret the
 * server reads, with no flag. A file keeps the
 * token out of argv (visible to every user in `ps`) and out of the
 * environment; it holds the server's token-file format, and the first line
 * (the current token of a rotation) is sent.
 */
import fs from "node:fs";
import { UsageError, type Verb } from "./args.js";

export function resolveToken(flags: Record<string, unknown>, env: NodeJS.ProcessEnv, verb: Verb | null): string | undefined {
  const flagToken = typeof flags.token === "string" && flags.token !== "" ? flags.token : undefined;
  const flagFile = typeof flags["token-file"] === "string" && flags["token-file"] !== "" ? flags["token-file"] : undefined;
  if (flagToken && flagFile) throw new UsageError("--token and --token-file: give one", verb);
  if (flagToken) return flagToken;
  if (flagFile) return readTokenFile(flagFile, "--token-file", verb);
  if (env.RTMANAGER_INTERNAL_TOKEN) return env.RTMANAGER_INTERNAL_TOKEN;
  if (env.RTMCTL_TOKEN_FILE) return readTokenFile(env.RTMCTL_TOKEN_FILE, "RTMCTL_TOKEN_FILE", verb);
  if (env.RTMANAGER_INTERNAL_TOKEN_FILE) return readTokenFile(env.RTMANAGER_INTERNAL_TOKEN_FILE, "RTMANAGER_INTERNAL_TOKEN_FILE", verb);
  return undefined;
}

function readTokenFile(file: string, source: string, verb: Verb | null): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`${source}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, verb);
  }
  const first = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== "");
  if (!first) throw new UsageError(`${source}: ${file} holds no token`, verb);
  return first;
}
