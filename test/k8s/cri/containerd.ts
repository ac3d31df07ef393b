/**
 * A private containerd for one test cluster: its own socket, root, state,
 * config and CNI configuration under a temp dir, never the machine's
 * containerd (Docker's, at /run/containerd). The CRI plugin runs pods with
 * runc on a CNI bridge over one private /24 (10.244.<slot>.0/24, bridge
 * `rtmcri<slot>`), the slot held by a lock directory so parallel test files
 * never share a subnet. Images come from Docker (`docker save` | `ctr
 * images import`); pulls go only to loopback (docker.io is redirected to
 * 127.0.0.1:9), so an image that is not imported fails its pull for real and
 * nothing leaves the machine.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../../..");

export const PAUSE_IMAGE = "galaxy/test-pause:1.0";
/** A second tag of galaxy/test-engine:1.0.1's image (a re-tagged patch release): same digest, another name. */
export const ALIAS_IMAGE = "galaxy/test-engine:1.0.9";
export const ALIAS_OF = "galaxy/test-engine:1.0.1";
const CNI_BIN_DIR = process.env.RTM_CNI_BIN_DIR ?? "/usr/lib/cni";
const SLOT_DIR = path.join(os.tmpdir(), "rtm-cri-slots");
const FIRST_SLOT = 173;
const LAST_SLOT = 199;

export interface Containerd {
  /** The CRI's gRPC socket. */
  socket: string;
  dir: string;
  /** The pods' subnet, e.g. 10.244.173.0/24, and the bridge's (gateway's) address on it. */
  subnet: string;
  gateway: string;
  /** `repo:tag@sha256:…` of ALIAS_OF, resolvable only because containerd has that digest ("" when ALIAS_OF was not imported). */
  digestRef: string;
  ctr(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Runs scripts/ensure-containerd.sh once per process (packages, CNI plugins, the pause image). */
let ensured: Promise<void> | null = null;
export function ensureContainerd(): Promise<void> {
  ensured ??= run("bash", [path.join(repoRoot, "scripts/ensure-containerd.sh")], { timeout: 300_000 })
    .then(() => undefined)
    .catch((err: unknown) => {
      ensured = null;
      const e = err as Error & { stderr?: string };
      throw new Error(`containerd for the CRI test kubelet unavailable: ${e.message}\n${e.stderr ?? ""}`);
    });
  return ensured;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A slot whose test process died (a crash, a killed vitest worker) may have left its containerd
 * running: stop that containerd (it was started by these tests, its pid and dir are in the slot) and
 * unmount its state before the slot is reused.
 */
async function reclaim(slotDir: string, slot: number): Promise<void> {
  const containerdPid = Number(await fs.readFile(path.join(slotDir, "containerd"), "utf8").catch(() => "0"));
  const stateDir = await fs.readFile(path.join(slotDir, "dir"), "utf8").catch(() => "");
  if (containerdPid > 0 && stateDir && alive(containerdPid)) {
    const cmdline = await fs.readFile(`/proc/${containerdPid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(`${stateDir}/config.toml`)) {
      process.kill(containerdPid, "SIGKILL");
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  if (stateDir.startsWith(path.join(os.tmpdir(), "rtm-cri-"))) {
    await killShims(path.join(stateDir, "containerd.sock"));
    await unmountUnder(stateDir);
    await fs.rm(stateDir, { recursive: true, force: true }).catch(() => undefined);
  }
  await run("ip", ["link", "delete", `rtmcri${slot}`]).catch(() => undefined);
  await fs.rm(slotDir, { recursive: true, force: true });
}

/** Takes the first free slot (mkdir is atomic); a slot whose holder died is taken over. */
async function takeSlot(): Promise<{ slot: number; dir: string; release: () => Promise<void> }> {
  await fs.mkdir(SLOT_DIR, { recursive: true });
  for (let slot = FIRST_SLOT; slot <= LAST_SLOT; slot++) {
    const dir = path.join(SLOT_DIR, String(slot));
    const holder = Number(await fs.readFile(path.join(dir, "pid"), "utf8").catch(() => "0"));
    if (holder > 0 && !alive(holder)) await reclaim(dir, slot);
    // A subnet something else routes (another network on this machine) is never used.
    if ((await run("ip", ["-4", "route"])).stdout.includes(`10.244.${slot}.`)) continue;
    try {
      await fs.mkdir(dir);
    } catch {
      continue;
    }
    await fs.writeFile(path.join(dir, "pid"), String(process.pid));
    return { slot, dir, release: () => fs.rm(dir, { recursive: true, force: true }) };
  }
  throw new Error(`no free CRI test subnet in 10.244.${FIRST_SLOT}-${LAST_SLOT}.0/24`);
}

function configToml(dir: string): string {
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/${PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # This machine may not lower oom_score_adj below its own (no CAP_SYS_RESOURCE): the sandbox's -998 and a
  # Guaranteed container's -997 are raised to containerd's own score, as on kind/rootless nodes.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # runc's state beside this containerd's, not in the machine's /run/containerd/runc.
        Root = "${dir}/runc"
${process.env.RTM_CRI_RUNC ? `        BinaryName = "${process.env.RTM_CRI_RUNC}"\n` : ""}  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${dir}/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${dir}/certs.d"
`;
}

function cniConflist(dir: string, slot: number): string {
  return JSON.stringify(
    {
      cniVersion: "0.4.0",
      name: `rtm-cri-${slot}`,
      plugins: [
        {
          type: "bridge",
          bridge: `rtmcri${slot}`,
          isGateway: true,
          // No masquerade: pods talk to the host and each other only, nothing leaves the machine.
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: "host-local", ranges: [[{ subnet: `10.244.${slot}.0/24`, gateway: `10.244.${slot}.1` }]], dataDir: `${dir}/ipam` },
        },
      ],
    },
    null,
    2,
  );
}

/** Every registry the tests name resolves to a loopback port nobody serves: a pull fails at once and stays here. */
async function registryHosts(dir: string): Promise<void> {
  for (const host of ["docker.io", "registry-1.docker.io"]) {
    await fs.mkdir(path.join(dir, "certs.d", host), { recursive: true });
    await fs.writeFile(path.join(dir, "certs.d", host, "hosts.toml"), `server = "http://127.0.0.1:9"\n\n[host."http://127.0.0.1:9"]\n  capabilities = ["pull", "resolve"]\n`);
  }
}

/**
 * Shims outlive containerd by design (containers survive its restarts): kill the ones serving this
 * containerd's socket, and the container processes under them, which are this test's.
 */
async function killShims(socket: string): Promise<void> {
  const shims: number[] = [];
  for (const pid of await fs.readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmd.startsWith("/usr/bin/containerd-shim") && cmd.includes(`\0${socket}`)) shims.push(Number(pid));
  }
  for (const shim of shims) {
    const children = (await run("ps", ["-o", "pid=", "--ppid", String(shim)]).catch(() => ({ stdout: "" }))).stdout.split(/\s+/).filter(Boolean);
    for (const c of children) {
      try {
        process.kill(Number(c), "SIGKILL");
      } catch {
        // already gone
      }
    }
    try {
      process.kill(shim, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

async function waitForSocket(socket: string, child: ChildProcess, log: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`containerd exited with ${child.exitCode}:\n${await log()}`);
    if (existsSync(socket)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`containerd did not open ${socket} in 30 s:\n${await log()}`);
}

/** Unmounts what containerd left under `dir` (sandbox shm, rootfs overlays), deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await fs.readFile("/proc/self/mounts", "utf8"))
    .split("\n")
    .map((l) => l.split(" ")[1]?.replace(/\\040/g, " "))
    .filter((m): m is string => !!m && m.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run("umount", ["-R", m]).catch(() => run("umount", ["-l", m]).catch(() => undefined));
}

export async function startContainerd(images: string[]): Promise<Containerd> {
  await ensureContainerd();
  const { slot, dir: slotDir, release } = await takeSlot();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `rtm-cri-${slot}-`));
  await fs.writeFile(path.join(slotDir, "dir"), dir);
  const socket = path.join(dir, "containerd.sock");
  await fs.mkdir(path.join(dir, "cni"), { recursive: true });
  await fs.writeFile(path.join(dir, "config.toml"), configToml(dir));
  await fs.writeFile(path.join(dir, "cni", "10-rtm-cri.conflist"), cniConflist(dir, slot));
  await registryHosts(dir);
  const logFile = await fs.open(path.join(dir, "containerd.log"), "a");
  const child = spawn("containerd", ["--config", path.join(dir, "config.toml"), "--log-level", "warn"], { stdio: ["ignore", logFile.fd, logFile.fd], detached: false });
  await fs.writeFile(path.join(slotDir, "containerd"), String(child.pid ?? 0));
  // A test process that exits without stop() must not leave its containerd behind.
  const orphanGuard = () => child.kill("SIGKILL");
  process.once("exit", orphanGuard);
  const log = () => fs.readFile(path.join(dir, "containerd.log"), "utf8").catch(() => "");
  const ctr = async (args: string[]) => (await run("ctr", ["--address", socket, "-n", "k8s.io", ...args], { timeout: 120_000, maxBuffer: 16 << 20 })).stdout;

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off("exit", orphanGuard);
    if (child.exitCode === null && child.pid) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    await logFile.close().catch(() => undefined);
    await killShims(socket);
    await unmountUnder(dir);
    await run("ip", ["link", "delete", `rtmcri${slot}`]).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    await release();
  };

  try {
    await waitForSocket(socket, child, log);
    await importImages(dir, images, ctr);
    let digestRef = "";
    if (images.includes(ALIAS_OF)) {
      await ctr(["images", "tag", `docker.io/${ALIAS_OF}`, `docker.io/${ALIAS_IMAGE}`]);
      const digest = await manifestDigest(ctr, `docker.io/${ALIAS_OF}`);
      // CRI resolves `repo:tag@sha256:…` by `repo@sha256:…` (containerd's localResolve); a pull would name it so.
      await ctr(["images", "tag", `docker.io/${ALIAS_OF}`, `docker.io/${ALIAS_OF.split(":")[0]}@${digest}`]);
      digestRef = `${ALIAS_OF}@${digest}`;
    }
    return { socket, dir, subnet: `10.244.${slot}.0/24`, gateway: `10.244.${slot}.1`, digestRef, ctr, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The name containerd stores a ref under: docker.io/ (and library/) added when no registry host leads it. */
export function qualified(ref: string): string {
  const first = ref.split("/")[0] ?? "";
  if (ref.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) return ref;
  return ref.includes("/") ? `docker.io/${ref}` : `docker.io/library/${ref}`;
}

/** The Docker tag of an image's non-root-ready variant (unique per source ref). */
const variantOf = (image: string): string => {
  const at = image.lastIndexOf(":");
  return `galaxy-cri/${image.slice(0, at).replace(/[^a-z0-9]+/g, "-")}:${image.slice(at + 1)}`;
};

/**
 * `docker save` | `ctr images import` of the pause image and the non-root-ready variants of the test
 * images (build-cri-images.sh), each then named as the image it was built from and the variant's
 * name dropped, so containerd knows exactly the names the tests use.
 */
async function importImages(dir: string, images: string[], ctr: Containerd["ctr"]): Promise<void> {
  if (images.length > 0) await run("bash", [path.join(here, "build-cri-images.sh"), ...images.map((i) => `${i}=${variantOf(i)}`)], { timeout: 300_000 });
  const tar = path.join(dir, "images.tar");
  await run("docker", ["save", "-o", tar, `docker.io/${PAUSE_IMAGE}`, ...images.map(variantOf)], { timeout: 120_000 });
  await ctr(["images", "import", tar]);
  await fs.rm(tar);
  for (const image of images) {
    await ctr(["images", "tag", qualified(variantOf(image)), qualified(image)]);
    await ctr(["images", "rm", qualified(variantOf(image))]);
  }
}

async function manifestDigest(ctr: Containerd["ctr"], ref: string): Promise<string> {
  const line = (await ctr(["images", "ls"])).split("\n").find((l) => l.startsWith(`${ref} `));
  const digest = line?.match(/sha256:[0-9a-f]{64}/)?.[0];
  if (!digest) throw new Error(`containerd lists no digest for ${ref}`);
  return digest;
}
