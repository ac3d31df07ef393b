/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's
 * LeaseLock does it: holderIdentity, leaseDurationSeconds, acquireTime,
 * renewTime and leaseTransitions. Every write is a replace carrying the
 * resourceVersion that was read, so two candidates racing for an expired
 * lease cannot both win: the loser gets 409 and `tryAcquire` answers false.
 *
 * Expiry is judged like client-go: the lease must be past renewTime +
 * leaseDurationSeconds, and this process must also have watched the record
 * stay unchanged for a whole lease duration on its own monotonic clock, so a
 * skewed clock on either side cannot hand the lease over early.
 *
 * Every call takes an AbortSignal (the elector bounds each attempt by the
 * renew deadline, as client-go does): an aborted signal cancels the HTTP
 * request, so a hanging API server cannot hold a leader that should step down.
 */
import {
  CoordinationV1Api,
  Observable,
  V1MicroTime,
  type ConfigurationOptions,
  type KubeConfig,
  type RequestContext,
  type ResponseContext,
  type V1Lease,
} from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import type { Lease } from "../model/ports.js";
import { apiMessageOf, httpStatusOf } from "../kube/api.js";
import { toDate } from "./kubeSource.js";

export interface KubernetesLeaseOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Lease object name. Default "rtmanager-leader". */
  name?: string;
  logger: Logger;
  /** Wall clock for the Lease's times (renewTime, acquireTime). Default Date.now. */
  clock?: () => number;
  /** Monotonic clock for "how long have I watched this record unchanged". Default performance.now. */
  monotonic?: () => number;
}

/** Request options that abort the HTTP call with `signal` (client-node's object API takes observable-style middleware). */
function withSignal(signal: AbortSignal | undefined): ConfigurationOptions | undefined {
  if (!signal) return undefined;
  const middleware = {
    pre: (context: RequestContext) => {
      // node-fetch's AbortSignal type is structural; the platform's works.
      context.setSignal(signal as Parameters<RequestContext["setSignal"]>[0]);
      return new Observable(Promise.resolve(context));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: "append" };
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error("lease call aborted");
}

interface Observed {
  /** holderIdentity + renewTime + resourceVersion as last read. */
  key: string;
  /** Local time at which that record was first seen. */
  at: number;
}

export class KubernetesLease implements Lease {
  private readonly api: CoordinationV1Api;
  private readonly name: string;
  private readonly clock: () => number;
  private readonly monotonic: () => number;
  private readonly logger: Logger;
  private observed: Observed | null = null;

  constructor(private readonly options: KubernetesLeaseOptions) {
    this.api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.name = options.name ?? "rtmanager-leader";
    this.clock = options.clock ?? Date.now;
    this.monotonic = options.monotonic ?? (() => performance.now());
    this.logger = options.logger.child({ component: "kube-lease", lease: `${options.namespace}/${this.name}` });
  }

  private async read(signal?: AbortSignal): Promise<V1Lease | null> {
    try {
      checkAborted(signal);
      return await this.api.readNamespacedLease({ namespace: this.options.namespace, name: this.name }, withSignal(signal));
    } catch (err) {
      if (httpStatusOf(err) === 404) return null;
      throw err;
    }
  }

  /**
   * client-go's tryAcquireOrRenew: create the Lease if there is none, else
   * renew it if ours, else take it over once expired; a 409 on either write
   * means another candidate got there first.
   */
  async tryAcquire(holder: string, durationMs: number, signal?: AbortSignal): Promise<boolean> {
    const now = this.clock();
    const seenAt = this.monotonic();
    const durationSeconds = Math.max(1, Math.ceil(durationMs / 1000));
    const current = await this.read(signal);
    checkAborted(signal);
    if (!current) return this.create(holder, durationSeconds, now, signal);
    if (this.heldByAnother(current, holder, durationSeconds, now, seenAt)) return false;
    return this.renewOrTakeOver(current, holder, durationSeconds, now, seenAt, signal);
  }

  private async create(holder: string, durationSeconds: number, now: number, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.api.createNamespacedLease(
        {
          namespace: this.options.namespace,
          body: {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name: this.name, namespace: this.options.namespace },
            spec: {
              holderIdentity: holder,
              leaseDurationSeconds: durationSeconds,
              acquireTime: new V1MicroTime(now),
              renewTime: new V1MicroTime(now),
              leaseTransitions: 0,
            },
          },
        },
        withSignal(signal),
      );
      return true;
    } catch (err) {
      if (httpStatusOf(err) === 409) return false; // another candidate created it first
      throw err;
    }
  }

  /** True while another holder's lease is unexpired, by its record or by this process's own watch of it. */
  private heldByAnother(current: V1Lease, holder: string, durationSeconds: number, now: number, seenAt: number): boolean {
    const spec = current.spec ?? {};
    const currentHolder = spec.holderIdentity ?? "";
    const renewedAt = toDate(spec.renewTime)?.getTime() ?? 0;
    const heldFor = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    const key = JSON.stringify([currentHolder, renewedAt, current.metadata?.resourceVersion ?? ""]);
    if (this.observed?.key !== key) this.observed = { key, at: seenAt };
    if (currentHolder === holder || currentHolder === "") return false;
    const expiredByRecord = renewedAt + heldFor < now;
    const expiredByObservation = this.observed.at + heldFor < seenAt;
    return !expiredByRecord || !expiredByObservation;
  }

  private async renewOrTakeOver(current: V1Lease, holder: string, durationSeconds: number, now: number, seenAt: number, signal?: AbortSignal): Promise<boolean> {
    const spec = current.spec ?? {};
    const currentHolder = spec.holderIdentity ?? "";
    const mine = currentHolder === holder;
    const nowTime = new V1MicroTime(now);
    const next: V1Lease = {
      ...current,
      spec: {
        ...spec,
        holderIdentity: holder,
        leaseDurationSeconds: durationSeconds,
        renewTime: nowTime,
        acquireTime: mine && spec.acquireTime ? new V1MicroTime(toDate(spec.acquireTime)?.getTime() ?? now) : nowTime,
        leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      checkAborted(signal);
      const written = await this.api.replaceNamespacedLease({ namespace: this.options.namespace, name: this.name, body: next }, withSignal(signal));
      this.observed = {
        key: JSON.stringify([holder, toDate(written.spec?.renewTime)?.getTime() ?? now, written.metadata?.resourceVersion ?? ""]),
        at: seenAt,
      };
      if (!mine) this.logger.info({ holder, previous: currentHolder || null }, "lease acquired");
      return true;
    } catch (err) {
      if (httpStatusOf(err) === 409) return false; // someone else wrote between our read and write
      throw err;
    }
  }

  /** Gives the lease up at once (holder cleared), so a standby need not wait for expiry. */
  async release(holder: string, signal?: AbortSignal): Promise<void> {
    const current = await this.read(signal);
    if (!current || current.spec?.holderIdentity !== holder) return;
    const now = new V1MicroTime(this.clock());
    try {
      await this.api.replaceNamespacedLease(
        {
          namespace: this.options.namespace,
          name: this.name,
          body: { ...current, spec: { ...current.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: now } },
        },
        withSignal(signal),
      );
      this.logger.info({ holder }, "lease released");
    } catch (err) {
      // 409: someone else already wrote it; then it is not ours to release anymore.
      if (httpStatusOf(err) !== 409) this.logger.warn({ err, apiMessage: apiMessageOf(err) }, "could not release the lease");
    }
  }
}
