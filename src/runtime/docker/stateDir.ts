/**
 * A game's state directory on the host, bind-mounted at GAME_STATE_PATH.
 *
 * Engines run with every capability dropped, so even root in an engine
 * cannot write a directory its uid does not own or its groups cannot write
 * (no CAP_DAC_OVERRIDE). The rule, Kubernetes' fsGroup: the directory belongs
 * to the fsGroup, mode 2770 (group-writable; setgid so what the engine creates
 * inherits the group), and every engine runs with the fsGroup as a
 * supplementary group. The controller needs no privilege for that when the
 * fsGroup is its own group (the default) or one of its groups; root (or
 * CAP_CHOWN) may name any group.
 */
import { constants } from "node:fs";
import { lstat, mkdir, open, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { RuntimeFailure } from "../../model/runtimeFailure.js";
import type { AdapterLogger } from "./calls.js";

/** Group-writable, setgid, nothing for others: the state is not for other users of the host. */
export const STATE_DIR_MODE = 0o2770;
const REQUIRED_BITS = 0o2070;

export interface StateDirOutcome {
  /** The group and mode it has now. */
  gid: number;
  mode: number;
  /** What could not be made to follow the rule (the directory is used as it is). */
  problem: string | null;
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/**
 * Creates the directory (never deletes one) and hands it to the fsGroup.
 * A directory that already exists is brought to the rule when the controller
 * may change it; when it may not (someone else's directory, a group the
 * controller is not in) it is used as it is and the outcome says why, since
 * an operator may have prepared it for the engine's uid on purpose.
 */
export async function prepareStateDir(statePath: string, fsGroup: number): Promise<StateDirOutcome> {
  // The state root: traversed by the controller only (dockerd mounts by host path as root).
  await mkdir(path.dirname(statePath), { recursive: true, mode: 0o750 });
  await mkdir(statePath, { mode: 0o770 }).catch((err: unknown) => {
    if (errCode(err) !== "EEXIST") throw err;
  });
  // Everything below goes through one descriptor opened without following a
  // symlink: a link planted at {stateRoot}/{gameId} (to /etc, or to another
  // game's state) is refused, never chowned, chmodded or mounted.
  const dir = await open(statePath, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW).catch(async (err: unknown) => {
    const code = errCode(err);
    if (code !== "ELOOP" && code !== "ENOTDIR") throw err;
    // Linux answers ENOTDIR for a symlink under O_DIRECTORY | O_NOFOLLOW; lstat only words the refusal.
    const what = (await lstat(statePath).catch(() => null))?.isSymbolicLink() ? "a symbolic link" : "not a directory";
    throw new RuntimeFailure("config_refused", "create", `the state path ${statePath} is ${what}; refusing to use it (move it away)`, { statePath });
  });
  try {
    return await bringToRule(dir, fsGroup);
  } finally {
    await dir.close();
  }
}

async function bringToRule(dir: FileHandle, fsGroup: number): Promise<StateDirOutcome> {
  let st = await dir.stat();
  let problem: string | null = null;
  if (st.gid !== fsGroup) {
    // The group first: a chmod by an owner outside the file's group would lose the setgid bit.
    try {
      await dir.chown(-1, fsGroup);
    } catch (err) {
      if (errCode(err) !== "EPERM") throw err;
      problem = `cannot give it to group ${fsGroup} (it is uid ${st.uid} gid ${st.gid}): the controller must own it and be in that group, or run as root (CAP_CHOWN)`;
    }
  }
  st = await dir.stat();
  // The required bits on, and nothing for others: a pre-existing world-readable directory is closed too.
  const wanted = ((st.mode & 0o7777) | REQUIRED_BITS) & ~0o007;
  if ((st.mode & 0o7777) !== wanted) {
    try {
      await dir.chmod(wanted);
    } catch (err) {
      if (errCode(err) !== "EPERM") throw err;
      problem ??= `cannot make it group-writable and closed to others (mode ${(st.mode & 0o7777).toString(8)}, owner uid ${st.uid}): only its owner or root (CAP_FOWNER) can`;
    }
    st = await dir.stat();
  }
  return { gid: st.gid, mode: st.mode & 0o7777, problem };
}

/** prepareStateDir as a runtime step: a failure to create is typed; a directory off the rule is logged. */
export async function ensureStateDir(
  spec: { gameId: string; statePath: string },
  fsGroup: number,
  logger: AdapterLogger | undefined,
): Promise<void> {
  let outcome: StateDirOutcome;
  try {
    outcome = await prepareStateDir(spec.statePath, fsGroup);
  } catch (err) {
    if (err instanceof RuntimeFailure) throw new RuntimeFailure(err.kind, err.operation, err.message, { ...err.details, gameId: spec.gameId }, { cause: err });
    throw new RuntimeFailure("failed", "create", `creating the state directory ${spec.statePath} failed: ${String(err)}`, { gameId: spec.gameId }, { cause: err });
  }
  if (outcome.problem) {
    logger?.warn(
      { gameId: spec.gameId, statePath: spec.statePath, fsGroup, gid: outcome.gid, mode: outcome.mode.toString(8) },
      `state directory not group-writable by the engines' fsGroup; the engine may be unable to write its state: ${outcome.problem}`,
    );
  }
}

/**
 * Why this process could not hand directories to the fsGroup, or null.
 * Said once at start-up, so a misconfiguration shows before the first game.
 */
export function fsGroupProblem(fsGroup: number): string | null {
  if (!process.getuid || !process.getgroups || !process.getgid) return null;
  if (process.getuid() === 0) return null;
  const groups = new Set([process.getgid(), ...process.getgroups()]);
  if (groups.has(fsGroup)) return null;
  return `RTMANAGER_ENGINE_FS_GROUP ${fsGroup} is not a group of this process (uid ${process.getuid()}, groups ${[...groups].join(",")}): it cannot hand state directories to it unless it has CAP_CHOWN; engines that are not their directory's owner may be unable to write their state`;
}
