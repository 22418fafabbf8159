// The supervisor's child process: runs one target's cases [from, to) and
// exits. Options arrive as one JSON argument (see ChildOptions).
import { runCampaign } from "./campaign.js";
import type { ChildOptions } from "./supervisor.js";

const o = JSON.parse(process.argv[2]!) as ChildOptions;
const { TARGETS } = (await import(o.targetsModule)) as typeof import("./targets.js");
const target = TARGETS.find((t) => t.name === o.target);
if (!target) throw new Error(`fuzz child: ${o.targetsModule} has no target "${o.target}"`);
runCampaign({ ...o, target });
