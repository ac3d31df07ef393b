/**
 * Request bodies in Kubernetes' protobuf encoding, for the kinds kubectl's
 * typed clients send that way: `kubectl create namespace` and `kubectl create
 * secret` POST `application/vnd.kubernetes.protobuf` (apimachinery
 * runtime/serializer/protobuf: the magic "k8s\0", then a runtime.Unknown
 * whose `raw` holds the object), and an API server decodes it like JSON.
 * Field numbers are those of k8s.io/api/core/v1/generated.proto and
 * apimachinery's meta/v1 and runtime generated.proto. Only Namespace and
 * Secret are decoded (what the documented install sends); any other kind is
 * 415, where a real server would decode it. Answers stay JSON: every client
 * also accepts application/json.
 */
import { HttpError, type Meta, type Obj } from "./types.js";

export const PROTOBUF = "application/vnd.kubernetes.protobuf";
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Field = { no: number; bytes?: Buffer; varint?: bigint };

/** The fields of one message, in order (wire types 0 and 2; 1 and 5 skipped). */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (i >= buf.length) throw new HttpError(400, "BadRequest", "truncated protobuf body");
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, varint: varint() });
    else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, bytes: buf.subarray(i, i + len) });
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new HttpError(400, "BadRequest", `unsupported protobuf wire type ${wire}`);
  }
  return out;
}

const str = (f: Field[], no: number): string | undefined => f.find((x) => x.no === no)?.bytes?.toString("utf8");
const strings = (f: Field[], no: number): string[] => f.filter((x) => x.no === no).map((x) => x.bytes!.toString("utf8"));

function map(f: Field[], no: number, asBase64 = false): Record<string, string> | undefined {
  const entries = f.filter((x) => x.no === no);
  if (entries.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const e of entries) {
    const kv = fields(e.bytes!);
    const value = kv.find((x) => x.no === 2)?.bytes ?? Buffer.alloc(0);
    out[str(kv, 1) ?? ""] = asBase64 ? value.toString("base64") : value.toString("utf8");
  }
  return out;
}

/** ObjectMeta: name 1, generateName 2, namespace 3, labels 11, annotations 12, finalizers 14 (what a create may set). */
function objectMeta(buf: Buffer | undefined): Meta {
  const f = fields(buf ?? Buffer.alloc(0));
  const meta: Meta = { name: str(f, 1) ?? "" };
  const generateName = str(f, 2);
  if (generateName) meta.generateName = generateName;
  const namespace = str(f, 3);
  if (namespace) meta.namespace = namespace;
  const labels = map(f, 11);
  if (labels) meta.labels = labels;
  const annotations = map(f, 12);
  if (annotations) meta.annotations = annotations;
  const finalizers = strings(f, 14);
  if (finalizers.length) meta.finalizers = finalizers;
  return meta;
}

/** The object a protobuf request body carries, as the JSON the rest of the server reads. */
export function decodeProtobuf(body: Buffer): Obj {
  if (!body.subarray(0, 4).equals(MAGIC)) throw new HttpError(400, "BadRequest", "protobuf body without the k8s magic prefix");
  const unknown = fields(body.subarray(4));
  const typeMeta = fields(unknown.find((x) => x.no === 1)?.bytes ?? Buffer.alloc(0));
  const apiVersion = str(typeMeta, 1) ?? "";
  const kind = str(typeMeta, 2) ?? "";
  const raw = fields(unknown.find((x) => x.no === 2)?.bytes ?? Buffer.alloc(0));
  const metadata = objectMeta(raw.find((x) => x.no === 1)?.bytes);
  if (apiVersion === "v1" && kind === "Namespace") {
    const finalizers = strings(fields(raw.find((x) => x.no === 2)?.bytes ?? Buffer.alloc(0)), 1);
    return { apiVersion, kind, metadata, spec: finalizers.length ? { finalizers } : {} };
  }
  if (apiVersion === "v1" && kind === "Secret") {
    const secret: Obj = { apiVersion, kind, metadata };
    const data = map(raw, 2, true);
    if (data) secret.data = data;
    const type = str(raw, 3);
    if (type) secret.type = type;
    const stringData = map(raw, 4);
    if (stringData) secret.stringData = stringData;
    const immutable = raw.find((x) => x.no === 5)?.varint;
    if (immutable !== undefined) secret.immutable = immutable !== 0n;
    return secret;
  }
  throw new HttpError(415, "UnsupportedMediaType", `the test API server decodes protobuf only for v1 Namespace and Secret, not ${apiVersion} ${kind}`);
}
