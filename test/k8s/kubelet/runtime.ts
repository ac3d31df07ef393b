/**
 * The Docker adapter of the test kubelet's ContainerRuntime (the CRI one is
 * criRuntime.ts): containers through dockerode. Images are only looked up,
 * never pulled (nothing may leave this machine), so a missing image is an
 * image pull failure. Every container publishes its ports on 127.0.0.1 with
 * a Docker-assigned host port, so Pods never collide; the pod IP is
 * 127.0.0.1.
 */
import { PassThrough, type Readable } from "node:stream";
import type Dockerode from "dockerode";
import { PullError, StartError, type ContainerRuntime, type LogRequest, type RunSpec, type Started } from "./containerRuntime.js";
import type { Terminated } from "./types.js";
import { nowTime } from "./types.js";

export { StartError, type RunSpec, type Started } from "./containerRuntime.js";

const RUN_NETWORK_LABEL = "kubelet.test.galaxy.io/network";
const statusCode = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

export class DockerRuntime implements ContainerRuntime {
  readonly version = "docker://20.10";
  private network: Promise<string> | null = null;

  /**
   * `network`: a bridge network of this cluster's own (created on first use,
   * removed by close()), so Pods never depend on the machine's default
   * bridge (docker0), which other users of the daemon may have taken away.
   */
  constructor(
    private readonly docker: Dockerode,
    private readonly networkName: string | null = null,
  ) {}

  private ensureNetwork(): Promise<string> | null {
    if (!this.networkName) return null;
    this.network ??= this.docker
      .createNetwork({ Name: this.networkName, Driver: "bridge", Labels: { [RUN_NETWORK_LABEL]: this.networkName } })
      .then(
        () => this.networkName!,
        (err: unknown) => {
          if (statusCode(err) === 409) return this.networkName!;
          this.network = null;
          throw err;
        },
      );
    return this.network;
  }

  pullImage(ref: string): Promise<string> {
    return Promise.reject(new PullError(`failed to pull and unpack image "${ref}": not present locally, and the test kubelet never pulls`));
  }

  /** The image's id, or null when it is not present locally. */
  async imageId(ref: string): Promise<string | null> {
    try {
      return (await this.docker.getImage(ref).inspect()).Id;
    } catch (err) {
      if (statusCode(err) === 404) return null;
      throw err;
    }
  }

  async run(spec: RunSpec): Promise<Started> {
    const exposed = Object.fromEntries(spec.ports.map((p) => [`${p}/tcp`, {}]));
    const bindings = Object.fromEntries(spec.ports.map((p) => [`${p}/tcp`, [{ HostIp: "127.0.0.1", HostPort: "" }]]));
    const container = await this.docker.createContainer({
      name: spec.name,
      Image: spec.image,
      ...(spec.command ? { Entrypoint: spec.command } : {}),
      ...(spec.args ? { Cmd: spec.args } : {}),
      Env: spec.env,
      Labels: spec.labels,
      ExposedPorts: exposed,
      HostConfig: { PortBindings: bindings, Binds: spec.binds, ...(this.networkName ? { NetworkMode: await this.ensureNetwork()! } : {}) },
    });
    try {
      await container.start();
    } catch (err) {
      throw new StartError(container.id, (err as { json?: { message?: string } }).json?.message ?? (err as Error).message);
    }
    const info = await container.inspect();
    const hostPorts: Record<number, number> = {};
    for (const p of spec.ports) {
      const b = info.NetworkSettings.Ports[`${p}/tcp`]?.[0];
      if (b) hostPorts[p] = Number(b.HostPort);
    }
    const startedAt = info.State.StartedAt.replace(/\.\d+Z$/, "Z");
    const names = await this.reportedNames(info.Image);
    return { id: container.id, containerID: `docker://${container.id}`, ...names, startedAt, hostPorts, podIP: "127.0.0.1", pid: info.State.Pid };
  }

  /**
   * What containerd's CRI ContainerStatus reports for a container's image
   * (pkg/cri/server/container_status.go: `spec = repoTags[0]`, `imageRef =
   * repoDigests[0]`, else the id): one name of the image, not necessarily the
   * one the Pod asked for, fully qualified (`docker.io/…`). Docker keeps tags in
   * the order they were made; containerd's image store keeps its references
   * sorted, so the first is the smallest.
   */
  private async reportedNames(imageId: string): Promise<{ reportedImage: string; imageId: string }> {
    const info = await this.docker.getImage(imageId).inspect();
    const tags = [...(info.RepoTags ?? [])].filter((t) => t !== "<none>:<none>").sort();
    const digests = [...(info.RepoDigests ?? [])].sort();
    return { reportedImage: tags[0] ? qualified(tags[0]) : imageId, imageId: digests[0] ? qualified(digests[0]) : imageId };
  }

  /** Resolves when the container exits, with its termination as the kubelet reports it. */
  async waitExit(id: string): Promise<Terminated> {
    const c = this.docker.getContainer(id);
    await c.wait();
    const s = (await c.inspect()).State;
    const reason = s.OOMKilled ? "OOMKilled" : s.ExitCode === 0 ? "Completed" : "Error";
    return { exitCode: s.ExitCode, reason, startedAt: s.StartedAt.replace(/\.\d+Z$/, "Z"), finishedAt: s.FinishedAt.startsWith("0001") ? nowTime() : s.FinishedAt.replace(/\.\d+Z$/, "Z"), containerID: `docker://${id}` };
  }

  /** SIGTERM, then SIGKILL after the grace period (0: SIGKILL at once). */
  async stop(id: string, graceSeconds: number): Promise<void> {
    try {
      if (graceSeconds <= 0) await this.docker.getContainer(id).kill({ signal: "SIGKILL" });
      else await this.docker.getContainer(id).stop({ t: graceSeconds });
    } catch (err) {
      if (![304, 404, 409].includes(statusCode(err) ?? 0)) throw err;
    }
  }

  releasePod(): Promise<void> {
    return Promise.resolve();
  }

  async removeAll(runLabel: string, runId: string): Promise<void> {
    const ids = await this.listLabelled(runLabel, runId);
    await Promise.all(ids.map((id) => this.remove(id)));
  }

  /** Removes the network this runtime created (its containers must be gone). */
  async close(): Promise<void> {
    if (!this.network) return;
    await this.network.catch(() => undefined);
    await this.docker.getNetwork(this.networkName!).remove().catch(() => undefined);
  }

  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (err) {
      if (![404, 409].includes(statusCode(err) ?? 0)) throw err;
    }
  }

  /** Every container carrying `label=value` (running or not). */
  async listLabelled(label: string, value: string): Promise<string[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${label}=${value}`] } });
    return list.map((c) => c.Id);
  }

  /** stdout and stderr interleaved, demultiplexed from Docker's framing. */
  async logs(id: string, options: LogRequest): Promise<Readable> {
    const c = this.docker.getContainer(id);
    const common = { stdout: true, stderr: true, timestamps: options.timestamps, ...(options.tailLines !== undefined ? { tail: options.tailLines } : {}) };
    const out = new PassThrough();
    if (!options.follow) {
      const buf = (await c.logs({ ...common, follow: false })) as unknown as Buffer;
      out.end(demux(buf));
      return out;
    }
    const stream = (await c.logs({ ...common, follow: true })) as unknown as Readable;
    this.docker.modem.demuxStream(stream, out, out);
    stream.on("end", () => out.end());
    stream.on("error", () => out.end());
    out.on("close", () => stream.destroy());
    return out;
  }
}

/** Docker's multiplexed log framing: 8-byte headers (stream, 0, 0, 0, size BE32) before each payload. */
function demux(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at + 8 <= buf.length) {
    const size = buf.readUInt32BE(at + 4);
    parts.push(buf.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return Buffer.concat(parts);
}

/** A reference as distribution/reference's ParseNormalizedNamed spells it: `x:1` -> `docker.io/library/x:1`. */
export function qualified(ref: string): string {
  const slash = ref.indexOf("/");
  const first = slash < 0 ? "" : ref.slice(0, slash);
  if (first.includes(".") || first.includes(":") || first === "localhost") return ref;
  return slash < 0 ? `docker.io/library/${ref}` : `docker.io/${ref}`;
}
