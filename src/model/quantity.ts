/**
 * Kubernetes quantities (`512Mi`, `1Gi`, `500m`, `1.5`, `2e3`), read as
 * apimachinery's resource.ParseQuantity reads them
 * (k8s.io/apimachinery/pkg/api/resource/quantity.go, parseQuantityString):
 *
 *   <quantity>     ::= <signedNumber><suffix>
 *   <number>       ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
 *   <suffix>       ::= <binarySI> | <decimalExponent> | <decimalSI>
 *   <binarySI>     ::= Ki | Mi | Gi | Ti | Pi | Ei
 *   <decimalSI>    ::= n | u | m | "" | k | M | G | T | P | E
 *   <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
 *
 * The value is kept exact (a fraction of BigInts); `wholeValue` and
 * `milliValue` round up, away from zero, as Quantity.Value and
 * Quantity.MilliValue do, which is what the kubelet hands the runtime
 * (memory limit: Value(); CPU quota: MilliValue()).
 *
 * Docker's (and this project's contract's) sizes are not quantities: there
 * `512m` is 512 MiB, here 0.512. See docs/kubernetes.md, "Quantities".
 */

/** An exact non-negative value num/den. */
export interface Quantity {
  num: bigint;
  den: bigint;
}

/**
 * The pattern controller-gen emits for a resource.Quantity field in a CRD,
 * for `x-kubernetes-int-or-string` fields of the GameRuntime schema.
 */
export const QUANTITY_PATTERN = "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$";

const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

/** Upstream caps an exponent's magnitude too (a bigger one overflows its int32 scale); this keeps BigInt math small. */
const MAX_EXPONENT = 64;

const SHAPE = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;

/** Null when the text is not a quantity, or is negative (no resource here may be). */
export function parseQuantity(text: string): Quantity | null {
  const m = SHAPE.exec(text);
  if (!m) return null;
  const [, sign, whole = "", frac = "", suffix = ""] = m;
  if (whole === "" && frac === "") return null;
  const digits = BigInt(`${whole}${frac}` || "0");
  let num = digits;
  let den = 10n ** BigInt(frac.length);
  if (suffix in BINARY) {
    num *= 2n ** BigInt(BINARY[suffix]!);
  } else {
    const exp = suffix in DECIMAL ? DECIMAL[suffix]! : Number(suffix.slice(1));
    if (Math.abs(exp) > MAX_EXPONENT) return null;
    if (exp >= 0) num *= 10n ** BigInt(exp);
    else den *= 10n ** BigInt(-exp);
  }
  if (sign === "-" && num !== 0n) return null;
  return { num, den };
}

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/** Quantity.Value: rounded up to a whole number. */
export function wholeValue(q: Quantity): bigint {
  return ceilDiv(q.num, q.den);
}

/** Quantity.MilliValue: thousandths, rounded up. */
export function milliValue(q: Quantity): bigint {
  return ceilDiv(q.num * 1000n, q.den);
}

/** True when the value has no fraction (a byte count must not). */
export function isWhole(q: Quantity): boolean {
  return q.num % q.den === 0n;
}
