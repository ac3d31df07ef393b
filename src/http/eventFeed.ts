/**
 * One reader of the event log per process, however many streams are open:
 * it reads the events after its cursor once (woken by a record notification,
 * or by a backstop poll for writers that do not wake us) and hands each to
 * every joined stream, in sequence order. A stream resuming from an older
 * cursor reads its own backlog first and joins once it has caught up with the
 * feed (see EventFeed.join).
 */
import type { Logger } from "../log.js";
import { toRtmError } from "../model/errors.js";
import type { StateStore } from "../model/ports.js";
import type { RuntimeEvent } from "../model/record.js";

export interface FeedSubscriber {
  /** Synchronous, in seq order; the subscriber filters by its own cursor and game. */
  deliver(event: RuntimeEvent): void;
  /** Once per outage of the feed's reads. */
  failed(message: string): void;
}

export interface EventFeedOptions {
  state: StateStore;
  subscribeEvents?(listener: () => void): () => void;
  pollMs: number;
  pageSize: number;
  logger: Logger;
}

export class EventFeed {
  /** The newest seq read; null while nobody listens (re-read from the store's bounds on the next join). */
  private cursor: number | null = null;
  private initialising: Promise<void> | null = null;
  private readonly subscribers = new Set<FeedSubscriber>();
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private reading = false;
  private again = false;
  private failing = false;
  /** Bumped when the feed goes idle, so a read begun before is dropped. */
  private epoch = 0;
  /** Reads of the event log by the feed; a test checks they do not grow with the streams. */
  reads = 0;

  constructor(private readonly options: EventFeedOptions) {}

  get size(): number {
    return this.subscribers.size;
  }

  /** The seq the feed has read up to, reading the store's bounds once when idle. */
  async position(): Promise<number> {
    while (this.cursor === null) {
      this.initialising ??= this.options.state
        .eventBounds()
        .then((b) => {
          this.cursor ??= b.latest ?? 0;
        })
        .finally(() => {
          this.initialising = null;
        });
      await this.initialising;
    }
    return this.cursor;
  }

  /**
   * Joins when `covered` (everything up to it has been read by the
   * subscriber itself) reaches the feed's cursor; checked and done in one
   * synchronous step, so no event falls between the subscriber's own reads
   * and the feed's deliveries. False: read again from `position()`.
   */
  join(subscriber: FeedSubscriber, covered: number): boolean {
    if (this.cursor === null || covered < this.cursor) return false;
    this.subscribers.add(subscriber);
    if (this.subscribers.size === 1) this.wakeUp();
    return true;
  }

  leave(subscriber: FeedSubscriber): void {
    if (!this.subscribers.delete(subscriber) || this.subscribers.size > 0) return;
    // Idle: stop reading, and forget the cursor so a later join does not read everything since.
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.cursor = null;
    this.epoch++;
    this.failing = false;
  }

  /** Wakes the feed now (tests, and the notification). */
  poke(): void {
    void this.pump();
  }

  private wakeUp(): void {
    this.timer = setInterval(() => void this.pump(), this.options.pollMs);
    this.timer.unref();
    this.unsubscribe = this.options.subscribeEvents?.(() => void this.pump()) ?? null;
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.cursor === null || this.subscribers.size === 0) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    const epoch = this.epoch;
    try {
      do {
        this.again = false;
        for (;;) {
          this.reads++;
          const batch = await this.options.state.eventsAfter(this.cursor, { limit: this.options.pageSize });
          if (epoch !== this.epoch || this.cursor === null) return;
          // Delivery and the cursor move together, with no await between: see join().
          for (const event of batch) for (const s of this.subscribers) s.deliver(event);
          if (batch.length > 0) this.cursor = batch[batch.length - 1]!.seq;
          if (batch.length < this.options.pageSize) break;
        }
      } while (this.again);
      if (this.failing) this.options.logger.info({ cursor: this.cursor }, "event feed reading again");
      this.failing = false;
    } catch (err) {
      if (epoch === this.epoch && !this.failing) {
        this.options.logger.warn({ err, cursor: this.cursor }, "event feed read failed");
        const message = `reading events failed: ${toRtmError(err).message}; retrying`;
        for (const s of this.subscribers) s.failed(message);
      }
      this.failing = true;
    } finally {
      this.reading = false;
    }
  }
}
