// Widgets that show the Explorer's step too (a gradient grid) follow it live, in the page: their
// `t` is set at every step, not saved (the kernel gets the step through the Explorer's t and its
// links once the scrub rests, transport.ts). The model's `followers` trait names them.
import type { AnyModel } from "@anywidget/types";
import type { Player } from "./transport";

export interface FollowedModel {
  followers?: string[]; // "IPY_MODEL_<id>" of the widgets whose `t` follows the live step
}

/** Moves the followers' t with the player's live step; returns the undo. */
export function followStep(model: AnyModel<FollowedModel>, player: Player): () => void {
  let followers: AnyModel<{ t: number }>[] = [];
  let asked = 0; // a newer list may be asked for before an older one resolves: the last asked wins

  function move(): void {
    for (const f of followers) f.set("t", player.t);
  }

  async function find(): Promise<void> {
    const ask = ++asked;
    const refs = model.get("followers") ?? [];
    const found = await Promise.all(refs.map((ref) => model.widget_manager.get_model(ref.replace(/^IPY_MODEL_/, ""))));
    if (ask !== asked) return;
    followers = found as unknown as AnyModel<{ t: number }>[];
    move();
  }

  const onFollowers = () => find().catch((e) => console.warn("rnnwidgets: a linked view was not found", e));
  const stopMoving = player.onStep(move);
  model.on("change:followers", onFollowers);
  onFollowers();
  return () => {
    stopMoving();
    model.off("change:followers", onFollowers);
  };
}
