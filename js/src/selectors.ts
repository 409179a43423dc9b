// The layer and quantity pickers (.rw-layer, .rw-quantity): filled from the payload, following the
// selection the kernel sets, and sending a pick to the model.
import type { AnyModel } from "@anywidget/types";
import { selectedLayer } from "./state";
import type { Change, ExplorerModel, ExplorerStore, ExplorerView } from "./store";
import { element } from "./dom";

function fillSelect(select: HTMLSelectElement, names: string[], selected: string): void {
  select.replaceChildren(
    ...names.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      return option;
    }),
  );
  select.value = selected;
}

export interface Selectors extends ExplorerView {
  layer: HTMLSelectElement;
  quantity: HTMLSelectElement;
}

export function createSelectors(model: AnyModel<ExplorerModel>, store: ExplorerStore): Selectors {
  const layer = element("select", "rw-layer");
  const quantity = element("select", "rw-quantity");
  const { state } = store;
  const pick = (name: "layer" | "quantity", select: HTMLSelectElement) => () => {
    model.set(name, select.value);
    model.save_changes();
  };
  layer.addEventListener("change", pick("layer", layer));
  quantity.addEventListener("change", pick("quantity", quantity));
  const fillQuantities = () => fillSelect(quantity, Object.keys(selectedLayer(state).quantities), state.quantity);
  return {
    layer,
    quantity,
    update(change: Change) {
      if (change === "payload") {
        fillSelect(layer, state.layers.map((l) => l.name), state.layer);
        fillQuantities();
      } else if (change === "layer") {
        layer.value = state.layer;
        fillQuantities();
      } else if (change === "step") layer.value = state.layer;
    },
  };
}
