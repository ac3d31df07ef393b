/** Prints the README's configuration table from src/config.ts (the test checks the README against it). */
import { CONFIG_DOCS } from "../src/config.js";

console.log("| variable | default | what it does |");
console.log("| --- | --- | --- |");
for (const s of CONFIG_DOCS) console.log(`| \`${s.env}\` | ${s.default === undefined ? "(unset)" : s.default === "" ? "(empty)" : `\`${s.default}\``} | ${s.doc} |`);
