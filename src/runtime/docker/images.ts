/** Images on Docker: presence, labels, pulls, and the pull policy. */
import type { CallOptions, ImagePullPolicy } from "../../model/ports.js";
import { RuntimeFailure } from "../../model/runtimeFailure.js";
import { CallTimeoutError, failure, isNotFound, type DockerContext } from "./calls.js";
import { destroyStream, readJsonLines } from "./streams.js";

export class DockerImages {
  constructor(
    private readonly ctx: DockerContext,
    /** Upper bound of a whole image pull. */
    private readonly pullTimeoutMs: number,
  ) {}

  /** `always` pulls every time; `if_not_present` only when missing; `never` fails on a missing image. */
  async ensure(ref: string, policy: ImagePullPolicy, options: CallOptions = {}): Promise<void> {
    if (policy === "always") return this.pull(ref, options);
    if (await this.present(ref, options)) return;
    if (policy === "never") {
      throw new RuntimeFailure("image_not_found", "ensure_image", `image ${ref} is not present locally and RTMANAGER_IMAGE_PULL_POLICY is never`, {
        imageRef: ref,
      });
    }
    await this.pull(ref, options);
  }

  async present(ref: string, options: CallOptions = {}): Promise<boolean> {
    try {
      // dockerode's image inspect does not hand a signal to docker-modem: the call gives up waiting instead.
      await this.ctx.calls.run("image_inspect", () => this.ctx.docker.getImage(ref).inspect(), { tolerate: isNotFound, signal: options.signal });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw failure("image_inspect", err, "failed", `inspect of image ${ref} failed`, { imageRef: ref });
    }
  }

  async labels(ref: string, options: CallOptions = {}): Promise<Record<string, string>> {
    try {
      const info = await this.ctx.calls.run("image_inspect", () => this.ctx.docker.getImage(ref).inspect(), { tolerate: isNotFound, signal: options.signal });
      return { ...(info.Config?.Labels ?? {}) };
    } catch (err) {
      if (isNotFound(err)) {
        throw new RuntimeFailure("image_not_found", "image_inspect", `image ${ref} is not present`, { imageRef: ref }, { cause: err });
      }
      throw failure("image_inspect", err, "failed", `inspect of image ${ref} failed`, { imageRef: ref });
    }
  }

  async pull(ref: string, options: CallOptions = {}): Promise<void> {
    try {
      await this.ctx.calls.run(
        "pull",
        async (signal) => {
          const stream = await this.ctx.docker.pull(ref, { abortSignal: signal });
          signal.addEventListener("abort", () => destroyStream(stream), { once: true });
          await this.followPull(ref, stream);
        },
        { timeoutMs: this.pullTimeoutMs, signal: options.signal },
      );
    } catch (err) {
      if (err instanceof CallTimeoutError) {
        // A slow registry, not a dead engine: the pull itself failed.
        throw new RuntimeFailure("pull_failed", "pull", `pull of ${ref} failed: ${err.message}`, { imageRef: ref }, { cause: err });
      }
      throw failure("pull", err, "pull_failed", `pull of ${ref} failed`, { imageRef: ref });
    }
  }

  /** Resolves when the progress stream ends; Docker reports a failed pull inside the stream, with HTTP 200. */
  private followPull(ref: string, stream: NodeJS.ReadableStream): Promise<void> {
    return new Promise((resolve, reject) => {
      let reported: string | null = null;
      let settled = false;
      const settle = (err: Error | null) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else if (reported !== null) reject(new RuntimeFailure("pull_failed", "pull", `pull of ${ref} failed: ${reported}`, { imageRef: ref }));
        else resolve();
      };
      readJsonLines(
        stream,
        (obj) => {
          if (obj && typeof obj === "object") {
            const o = obj as { error?: unknown; errorDetail?: { message?: unknown } };
            const msg = o.errorDetail?.message ?? o.error;
            if (typeof msg === "string" && reported === null) reported = msg;
          }
        },
        (line) => this.ctx.logger?.debug({ line, ref }, "unparseable pull progress line"),
      );
      let ended = false;
      stream.on("end", () => {
        ended = true;
        settle(null);
      });
      // A close without end is a cut connection: the image may be half pulled.
      stream.on("close", () => {
        if (!ended) settle(Object.assign(new Error("pull stream closed before completion"), { code: "ECONNRESET" }));
      });
      stream.on("error", (err: Error) => settle(err));
    });
  }
}
