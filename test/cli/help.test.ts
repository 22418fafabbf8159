// Every command's help: examples, required options marked, defaults printed
// as a user types them; and the one name-list parser the list options share.
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { registerDemo } from "../../src/cli/demo.js";
import { registerForward } from "../../src/cli/forward.js";
import { examples, formatDefault, helpConfig } from "../../src/cli/help.js";
import { registerInfo } from "../../src/cli/info.js";
import { names, parsePoint } from "../../src/cli/parse.js";
import { registerPhantom } from "../../src/cli/phantom.js";
import { registerSegment } from "../../src/cli/segment.js";
import { registerSmoke } from "../../src/cli/smoke.js";
import { registerTrain } from "../../src/cli/train.js";
import { registerTune } from "../../src/cli/tune.js";

/** The commands this file's modules register, configured as main.ts does. */
function program(): Command {
  const p = new Command().exitOverride().configureHelp(helpConfig);
  for (const register of [registerSmoke, registerInfo, registerForward, registerSegment, registerTrain, registerPhantom, registerDemo, registerTune]) register(p);
  return p;
}

function helpOf(cmd: Command): string {
  let text = "";
  cmd.configureOutput({ writeOut: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}

describe("CLI help", () => {
  const commands = program().commands;

  it("ends every command's help with examples that run that command", () => {
    for (const cmd of commands) {
      const help = helpOf(cmd);
      expect(help, cmd.name()).toMatch(/\nExamples:\n {2}\$ segvol /);
      expect(help, cmd.name()).toContain(`$ segvol ${cmd.name()}`);
    }
  });

  it("marks required options and prints defaults unquoted, long fractions rounded", () => {
    for (const cmd of commands) {
      const help = helpOf(cmd);
      expect(help, cmd.name()).not.toMatch(/default: "/);
      for (const o of cmd.options.filter((o) => o.mandatory)) {
        expect(help, `${cmd.name()} ${o.long}`).toMatch(new RegExp(`${o.flags.replace(/[<>[\]]/g, "\\$&")}\\s+\\(required\\)`));
      }
    }
    const train = helpOf(commands.find((c) => c.name() === "train")!);
    expect(train).toMatch(/--pos-fraction <p>[^]*?\(default: 0\.6667\)/);
    expect(train).toMatch(/--lr <x>[^]*?\(default: 1e-4\)/);
  });

  it("says which axes each command's box and point use", () => {
    const segment = helpOf(commands.find((c) => c.name() === "segment")!);
    const forward = helpOf(commands.find((c) => c.name() === "forward")!);
    expect(segment).toMatch(/--box <i0,j0,k0,i1,j1,k1>\s+box prompt: inclusive corners in voxel indices \(i,\s+j, k\) of the input/);
    expect(forward).toMatch(/--box <d0,h0,w0,d1,h1,w1>\s+box prompt: inclusive corners in voxel indices \(d,\s+h, w\) of the window/);
    expect(segment).toMatch(/--point <i,j,k\[,label\]>/);
    expect(forward).toMatch(/--point <d,h,w\[,label\]>/);
  });

  it("formats defaults as typed, rounding only long numbers", () => {
    expect(formatDefault(String(2 / 3))).toBe("0.6667");
    expect(formatDefault("1e-4")).toBe("1e-4");
    expect(formatDefault("0.5")).toBe("0.5");
    expect(formatDefault("segvol-demo")).toBe("segvol-demo");
    expect(formatDefault(4242)).toBe("4242");
    // Whole numbers are exact however long (segment --max-voxels: 536870912, not 536900000).
    expect(formatDefault(String(512 * 512 * 2048))).toBe("536870912");
    expect(examples(["segvol a", "segvol b"])).toBe("\nExamples:\n  $ segvol a\n  $ segvol b\n");
  });
});

describe("list and prompt options", () => {
  it("take name lists repeated, comma-separated or both, through one parser", () => {
    const p = program();
    const parse = (args: string[]) => {
      const cmd = new Command().exitOverride().option("--text <name>", "", names("--text"));
      cmd.parse(["node", "x", ...args]);
      return cmd.opts().text as string[];
    };
    expect(parse(["--text", "liver", "--text", "left kidney"])).toEqual(["liver", "left kidney"]);
    expect(parse(["--text", "liver, spleen", "--text", "aorta"])).toEqual(["liver", "spleen", "aorta"]);
    expect(() => parse(["--text", "liver,,spleen"])).toThrow(/--text liver,,spleen: empty name/);
    // train and phantom use the same parser for --categories and --labels.
    for (const [cmd, flag] of [["train", "--categories"], ["phantom", "--labels"], ["segment", "--text"]]) {
      const o = p.commands.find((c) => c.name() === cmd)!.options.find((x) => x.long === flag)!;
      expect(o.parseArg!("a,b", ["z"]), `${cmd} ${flag}`).toEqual(["z", "a", "b"]);
    }
  });

  it("read points the same way in forward and segment: label optional, 1 by default", () => {
    expect(parsePoint("--point", "1,2,3")).toEqual({ at: [1, 2, 3], label: 1 });
    expect(parsePoint("--point", "1,2,3,0")).toEqual({ at: [1, 2, 3], label: 0 });
    expect(() => parsePoint("--point", "1,2,3,2")).toThrow(/label must be 1 \(positive\) or 0 \(negative\), got 2/);
    expect(() => parsePoint("--point", "1,2")).toThrow(/expected 3 comma-separated integers/);
  });
});
