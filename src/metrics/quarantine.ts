/**
 * Quarantine metrics: a gauge of the images quarantined now (every replica
 * reports the store's set, as last read) and a counter of quarantines this
 * replica's loop imposed. Labels never carry the image: an operator finds it
 * with `rtmctl quarantine list`.
 */
import { Counter, type Registry } from "prom-client";
import { scrapeGauge } from "./gauge.js";

export class QuarantineMetrics {
  private activeCount: () => number = () => 0;
  private readonly imposed: Counter;

  constructor(registry: Registry) {
    scrapeGauge(
      registry,
      { name: "rtmanager_images_quarantined", help: "Images quarantined now: their patches kept rolling back, and further patches to them are refused until lifted." },
      (g) => g.set(this.activeCount()),
    );
    this.imposed = new Counter({ name: "rtmanager_image_quarantines_total", help: "Image quarantines imposed by this replica's loop.", registers: [registry] });
  }

  /** The quarantines the gauge counts (app.ts binds it once they exist). */
  bind(activeCount: () => number): void {
    this.activeCount = activeCount;
  }

  readonly onImposed = (): void => {
    this.imposed.inc();
  };
}
