/**
 * `pods/{name}/exec` over WebSocket, as kubectl >= 1.30 speaks it
 * (client-go tools/remotecommand websocket.go; the kubelet's side is
 * apiserver pkg/util/wsstream and kubelet/cri/streaming/remotecommand):
 * subprotocol v5.channel.k8s.io (or v4), every binary message prefixed with
 * its stream: 1 stdout, 2 stderr, 3 the error stream, which carries one
 * metav1.Status at the end: Success, or Failure with reason NonZeroExitCode
 * and the code in details.causes[reason=ExitCode] (remotecommand
 * errorDecoderV4). Then the connection closes. stdin (0), resize (4) and the
 * v5 close signal (255) are read and ignored: `kubectl exec` without -i sends
 * none. The command runs wherever the test's ExecHandler runs it (the Pod's
 * emulation); SPDY, the older transport, is not served. The WebSocket side
 * is the few lines RFC 6455 asks of a server that only writes: the
 * handshake, unmasked binary frames and a close frame (the client's frames
 * are read and dropped).
 */
import { createHash } from "node:crypto";
import type http from "node:http";
import type { Duplex } from "node:stream";
import { parsePath } from "./resources.js";
import type { ObjectStore } from "./store.js";
import { HttpError, clone, statusBody, type Obj } from "./types.js";

export interface ExecOptions {
  container: string;
  command: string[];
  tty: boolean;
}
export interface ExecIo {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
}
/** Runs `command` in the pod's container, writing its output to `io`; resolves to its exit code. Throws an HttpError when it cannot run. */
export type ExecHandler = (pod: Obj, options: ExecOptions, io: ExecIo) => Promise<number>;

const PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;

function refuse(socket: Duplex, e: HttpError): void {
  const body = JSON.stringify(statusBody(e.code, e.reason, e.message));
  socket.end(`HTTP/1.1 ${e.code} ${e.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

function frame(stream: number, data: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from([stream]), Buffer.isBuffer(data) ? data : Buffer.from(data, "utf8")]);
}

function exitStatus(code: number, command: string[]): Record<string, unknown> {
  if (code === 0) return { metadata: {}, status: "Success" };
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command [${command.join(" ")}], exit code ${code}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(code) }] },
  };
}

/** Resolves the pod and container of an exec request, or throws the API server's error. */
function target(store: ObjectStore, url: URL): { pod: Obj; options: ExecOptions } {
  const parsed = parsePath(url.pathname);
  if (!parsed || parsed.def.key !== "pods" || parsed.subresource !== "exec" || !parsed.name) throw new HttpError(404, "NotFound", `the server could not find the requested resource (${url.pathname})`);
  const pod = store.mustGet(parsed.def, parsed.namespace, parsed.name);
  const containers = (((pod.spec ?? {}) as { containers?: { name: string }[] }).containers ?? []).map((c) => c.name);
  const container = url.searchParams.get("container") ?? (containers.length === 1 ? containers[0]! : "");
  if (!containers.includes(container)) throw new HttpError(400, "BadRequest", `container ${container} is not valid for pod ${pod.metadata.name}`);
  const command = url.searchParams.getAll("command");
  if (command.length === 0) throw new HttpError(400, "BadRequest", "you must specify at least 1 command");
  return { pod: clone(pod), options: { container, command, tty: url.searchParams.get("tty") === "true" } };
}

/** One server-to-client WebSocket frame (RFC 6455 5.2): FIN, opcode, unmasked payload length. */
function wsFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126 && len < 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else if (len >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

export class ExecServer {
  handler: ExecHandler | null = null;
  private readonly open = new Set<Duplex>();

  constructor(
    private readonly store: ObjectStore,
    private readonly record: (method: string, url: URL) => void,
  ) {}

  /** The HTTP server's 'upgrade' event. */
  upgrade(req: http.IncomingMessage, socket: Duplex): void {
    const url = new URL(req.url ?? "/", "http://fake");
    this.record(req.method ?? "GET", url);
    let resolved: { pod: Obj; options: ExecOptions };
    let protocol: string;
    try {
      resolved = target(this.store, url);
      if (!this.handler) throw new HttpError(400, "BadRequest", `container "${resolved.options.container}" in pod "${resolved.pod.metadata.name}" is waiting to start: no kubelet runs it`);
      const offered = String(req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim());
      const chosen = PROTOCOLS.find((p) => offered.includes(p));
      if (!chosen || String(req.headers.upgrade).toLowerCase() !== "websocket") throw new HttpError(400, "BadRequest", "only v5.channel.k8s.io and v4.channel.k8s.io exec over WebSocket are served (no SPDY)");
      protocol = chosen;
    } catch (err) {
      refuse(socket, err instanceof HttpError ? err : new HttpError(500, "InternalError", (err as Error).message));
      return;
    }
    const accept = createHash("sha1").update(`${String(req.headers["sec-websocket-key"])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`);
    this.open.add(socket);
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
    socket.on("close", () => this.open.delete(socket));
    void this.run(socket, this.handler!, resolved.pod, resolved.options);
  }

  private async run(socket: Duplex, handler: ExecHandler, pod: Obj, options: ExecOptions): Promise<void> {
    const send = (stream: number, data: Buffer | string) => {
      if (!socket.destroyed) socket.write(wsFrame(0x2, frame(stream, data)));
    };
    let status: Record<string, unknown>;
    try {
      const code = await handler(pod, options, { stdout: (b) => send(STDOUT, b), stderr: (b) => send(STDERR, b) });
      status = exitStatus(code, options.command);
    } catch (err) {
      status = { metadata: {}, status: "Failure", message: (err as Error).message, reason: err instanceof HttpError ? err.reason : "InternalError", code: err instanceof HttpError ? err.code : 500 };
    }
    send(ERROR, JSON.stringify(status));
    if (!socket.destroyed) socket.end(wsFrame(0x8, Buffer.from([0x03, 0xe8])));
  }

  close(): void {
    for (const s of this.open) s.destroy();
  }
}
