// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { MAX_COLUMNS, createTokenAt, showToken, tokenAt, tokenAtColumns } from "../src/token_at";
import { explorerState, layer, quantity } from "./fake-state";

describe("the input at t", () => {
  it("makes whitespace tokens visible", () => {
    expect(showToken("a b\n\t")).toBe("a␣b⏎⇥");
  });

  it("is the token at t, or the first input values when there are no tokens", () => {
    expect(tokenAt({ tokens: ["a", " "], inputs: null }, 1)).toBe("␣");
    expect(tokenAt({ tokens: ["a"], inputs: null }, 1)).toBe(""); // fewer tokens than steps
    const six = quantity("input", 2, 6, (t, u) => t + u / 10);
    expect(tokenAt({ tokens: null, inputs: six }, 1)).toBe("x = [1.000, 1.100, 1.200, 1.300, …]");
    const two = quantity("input", 2, 2, (t, u) => -t - u);
    expect(tokenAt({ tokens: null, inputs: two }, 1)).toBe("x = [-1.000, -2.000]");
  });

  it("follows the step as text", () => {
    const panel = createTokenAt();
    const state = explorerState([layer("rnn.l0", "rnn", [quantity("h", 2, 1, () => 0)])], { tokens: ["<b>x</b>", "y"] });
    panel.update(state);
    expect([panel.el.className, panel.el.textContent]).toEqual(["rw-token-at", "<b>x</b>"]);
    expect(panel.el.querySelector("b")).toBeNull();
    panel.update({ ...state, t: 1 });
    expect(panel.el.textContent).toBe("y");
  });

  it("is given the columns of its widest text, at most MAX_COLUMNS", () => {
    expect(tokenAtColumns({ tokens: ["a", "a b", "日"], inputs: null })).toBe(3);
    expect(tokenAtColumns({ tokens: ["x".repeat(100)], inputs: null })).toBe(MAX_COLUMNS);
    const six = quantity("input", 2, 6, (t, u) => -t - u / 10);
    expect(tokenAtColumns({ tokens: null, inputs: six })).toBe(Math.max(tokenAt({ tokens: null, inputs: six }, 0).length,
      tokenAt({ tokens: null, inputs: six }, 1).length));
  });
});
