/** `rtmctl quarantine list|lift <image>`: the image quarantines (GET/POST /api/v1/ext/quarantines). */
import { UsageError } from "./args.js";
import { structured, type Command } from "./context.js";
import { EXIT_OK } from "./exitCodes.js";
import { age, table } from "./format.js";

export const quarantineCommand: Command = async (ctx, [action = "", image]) => {
  if (action === "lift") {
    if (!image) throw new UsageError("quarantine lift takes <image>", "quarantine");
    const lifted = await ctx.client.liftQuarantine(image, { signal: ctx.signal });
    if (ctx.output !== "table") ctx.io.out(structured(ctx.output, lifted));
    else ctx.io.out(`quarantine of ${lifted.imageRef} lifted (it was imposed ${lifted.since} after ${lifted.rollbacks} rollbacks); patches to it go ahead again\n`);
    return EXIT_OK;
  }
  if (action !== "list") throw new UsageError(`quarantine takes list or lift <image>, got ${JSON.stringify(action)}`, "quarantine");
  if (image !== undefined) throw new UsageError("quarantine list takes no image", "quarantine");
  const items = await ctx.client.quarantines({ signal: ctx.signal });
  if (ctx.output !== "table") {
    ctx.io.out(structured(ctx.output, items));
    return EXIT_OK;
  }
  if (items.length === 0) {
    ctx.io.err("no image is quarantined\n");
    return EXIT_OK;
  }
  const now = Date.now();
  ctx.io.out(table(["IMAGE", "SINCE", "ROLLBACKS", "GAMES"], items.map((q) => [q.imageRef, `${q.since} (${age(q.since, now)} ago)`, String(q.rollbacks), q.games.join(",")])));
  return EXIT_OK;
};
