// The bundle's entry: anywidget calls `render` for each view; the Python widget's `_view`
// trait says which view it is.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { type ChartModel, renderChart } from "./chart";
import { type CompareModel, renderCompare } from "./compare";
import { type DynamicsModel, renderDynamics } from "./dynamics";
import { type ExplorerModel, renderExplorer } from "./explorer";
import { type GridModel, renderGrid } from "./gridview";
import { type CoclustersModel, type MatchesModel, renderCoclusters, renderMatches } from "./patterns";
import { renderSteps, type StepsModel } from "./steps";
import { renderText, type TextModel } from "./text";

const VIEWS: Record<string, (model: AnyModel, el: HTMLElement) => () => void> = {
  explorer: (model, el) => renderExplorer(model as AnyModel<ExplorerModel>, el),
  matches: (model, el) => renderMatches(model as AnyModel<MatchesModel>, el),
  coclusters: (model, el) => renderCoclusters(model as AnyModel<CoclustersModel>, el),
  grid: (model, el) => renderGrid(model as AnyModel<GridModel>, el),
  dynamics: (model, el) => renderDynamics(model as AnyModel<DynamicsModel>, el),
  chart: (model, el) => renderChart(model as AnyModel<ChartModel>, el),
  steps: (model, el) => renderSteps(model as AnyModel<StepsModel>, el),
  compare: (model, el) => renderCompare(model as AnyModel<CompareModel>, el),
  text: (model, el) => renderText(model as AnyModel<TextModel>, el),
};

function render({ model, el }: RenderProps<{ _view: string }>): () => void {
  const name = model.get("_view");
  const view = VIEWS[name];
  if (!view) throw new Error(`rnnwidgets: unknown view ${JSON.stringify(name)}; known: ${Object.keys(VIEWS).join(", ")}`);
  return view(model, el);
}

export default { render };
