// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import { type FollowedModel, followStep } from "../src/followers";
import { playerOf } from "../src/transport";
import { FakeModel } from "./fake_model";

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

function followed(refs: string[], models: Record<string, FakeModel<{ t: number }>>) {
  const model = new FakeModel<FollowedModel & { t: number; playing: boolean; interval: number }>({
    followers: refs, t: 0, playing: false, interval: 100,
  });
  model.widget_manager = {
    get_model: (id: string) => (id in models ? Promise.resolve(models[id]) : Promise.reject(new Error(`no ${id}`))),
  } as unknown as typeof model.widget_manager;
  const player = playerOf(model, () => 9);
  return { model, player };
}

afterEach(() => vi.restoreAllMocks());

describe("followStep", () => {
  it("sets the followers' t at each live step, in the page only", async () => {
    const grid = new FakeModel({ t: 0 });
    const { model, player } = followed(["IPY_MODEL_grid"], { grid });
    const undo = followStep(model, player);
    await settle();
    player.setT(4);
    expect([grid.get("t"), grid.saves]).toEqual([4, 0]);
    undo();
    player.setT(5);
    expect(grid.get("t")).toBe(4);
    expect(model.listenerCount()).toBe(0);
  });

  it("moves a newly named follower to the live step at once", async () => {
    const grid = new FakeModel({ t: 0 });
    const { model, player } = followed([], { grid });
    followStep(model, player);
    player.setT(3);
    model.set("followers", ["IPY_MODEL_grid"]);
    await settle();
    expect(grid.get("t")).toBe(3);
  });

  it("says so when a follower is not found, and keeps following the ones it had", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const grid = new FakeModel({ t: 0 });
    const { model, player } = followed(["IPY_MODEL_grid"], { grid });
    followStep(model, player);
    await settle();
    model.set("followers", ["IPY_MODEL_gone"]);
    await settle();
    expect(warn).toHaveBeenCalledOnce();
    player.setT(2);
    expect(grid.get("t")).toBe(2);
  });
});
