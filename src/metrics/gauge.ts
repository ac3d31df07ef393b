import { Gauge, type GaugeConfiguration, type Registry } from "prom-client";

/** A gauge filled at scrape time; prom-client calls collect() with the gauge as `this`. */
export function scrapeGauge<L extends string>(
  registry: Registry,
  config: Omit<GaugeConfiguration<L>, "collect" | "registers">,
  fill: (g: Gauge<L>) => void | Promise<void>,
): Gauge<L> {
  return new Gauge<L>({
    ...config,
    registers: [registry],
    collect() {
      return fill(this);
    },
  });
}
