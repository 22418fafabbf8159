// The CLI's argument parsers (src/cli/parse.ts) and how help prints an
// option's default (src/cli/help.ts), checked value by value: what each
// accepts, what it refuses, and that a refusal names the flag and the value.
import { Option } from "commander";
import { describe, expect, it } from "vitest";
import { formatDefault, helpConfig } from "../../src/cli/help.js";
import { collect, names, parseBox, parseIntList, parsePositiveInt } from "../../src/cli/parse.js";

describe("parseIntList", () => {
  it("reads exactly the stated number of integers, spaces around them allowed", () => {
    expect(parseIntList("--dims", " 3, -4 ,5", 3)).toEqual([3, -4, 5]);
    expect(parseBox("--box", "0,1,2,10,11,12")).toEqual([0, 1, 2, 10, 11, 12]);
  });

  it("refuses a wrong count, an empty or blank part and a non-integer, naming flag and value", () => {
    expect(() => parseIntList("--dims", "1,2", 3)).toThrow("--dims 1,2: expected 3 comma-separated integers");
    expect(() => parseIntList("--dims", "1,2,3,4", 3)).toThrow("--dims 1,2,3,4: expected 3 comma-separated integers");
    // Number("") and Number(" ") are 0: an empty part must not read as 0.
    expect(() => parseIntList("--dims", "1,,3", 3)).toThrow('--dims 1,,3: "" is not an integer');
    expect(() => parseIntList("--dims", "1, ,3", 3)).toThrow('--dims 1, ,3: "" is not an integer');
    expect(() => parseIntList("--dims", "1,2.5,3", 3)).toThrow('--dims 1,2.5,3: "2.5" is not an integer');
    expect(() => parseIntList("--dims", "1,x,3", 3)).toThrow('--dims 1,x,3: "x" is not an integer');
    expect(() => parseBox("--box", "1,2,3")).toThrow("--box 1,2,3: expected 6 comma-separated integers");
  });
});

describe("parsePositiveInt", () => {
  it("accepts whole numbers from 1 up to the largest safe integer", () => {
    expect(parsePositiveInt("--max-voxels", "1")).toBe(1);
    expect(parsePositiveInt("--max-voxels", " 42 ")).toBe(42);
    expect(parsePositiveInt("--max-voxels", "536870912")).toBe(512 * 512 * 2048);
    expect(parsePositiveInt("--max-voxels", String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("refuses blanks, 0, negatives, fractions, words and unsafe or infinite numbers", () => {
    for (const bad of ["", " ", "0", "-3", "0.5", "1.5", "abc", "1e400", String(2 ** 53)]) {
      expect(() => parsePositiveInt("--max-voxels", bad), JSON.stringify(bad)).toThrow(`--max-voxels ${bad}: expected a whole number of at least 1`);
    }
  });
});

describe("collectors", () => {
  it("collect keeps each value whole, in order, without changing the earlier list", () => {
    expect(collect("a.nii")).toEqual(["a.nii"]);
    const before = ["a.nii"];
    expect(collect("b,c.nii", before)).toEqual(["a.nii", "b,c.nii"]);
    expect(before).toEqual(["a.nii"]);
  });

  it("names splits on commas and trims, starting from an empty list", () => {
    expect(names("--text")(" liver ,spleen")).toEqual(["liver", "spleen"]);
    expect(() => names("--text")("liver, ")).toThrow("--text liver, : empty name");
  });
});

describe("defaults in help", () => {
  it("rounds only numbers longer than 8 characters, and not blank or listed values", () => {
    expect(formatDefault(2 / 3)).toBe("0.6667");
    expect(formatDefault(0.123456)).toBe("0.123456"); // 8 characters: kept
    expect(formatDefault(0.1234567)).toBe("0.1235"); // 9: rounded
    expect(formatDefault("123456789")).toBe("123456789"); // whole numbers exact: rounding 536870912 printed 536900000
    expect(formatDefault("1234.56789")).toBe("1235");
    expect(formatDefault("         ")).toBe("         ");
    expect(formatDefault([2 / 3])).toBe(String(2 / 3));
    expect(formatDefault(["liver", "spleen"])).toBe("liver,spleen");
    expect(formatDefault(true)).toBe("true");
  });

  it("prints a default only for options that take a value and have one", () => {
    const text = (o: Option) => helpConfig.optionDescription!(o);
    expect(text(new Option("--lr <x>", "learning rate").default(2 / 3))).toBe("learning rate (default: 0.6667)");
    expect(text(new Option("--mode [m]", "mode").default("fast"))).toBe("mode (default: fast)");
    expect(text(new Option("--out <dir>", "output folder"))).toBe("output folder");
    expect(text(new Option("--out <dir>", "output folder").makeOptionMandatory())).toBe("(required) output folder");
    expect(text(new Option("--quiet", "no progress").default(false))).toBe("no progress");
    expect(text(new Option("--no-zoom-in", "skip the zoom-in").default(true))).toBe("skip the zoom-in");
  });
});
