// The homepage's entry point: each part wires its own controls, then the first load.
// The parts: controls.js (filters <-> controls <-> URL), loading.js (a load and its
// refreshes), cards.js (the stats cards), chart-panel.js (runs per day or hour),
// runs-table.js (the runs), run-dialog.js (a run and its admin actions), token.js (the
// admin token); they share page.js, dom.js, format.js and cells.js, and use api.js,
// filters.js and chart.js.

import { initCards } from "./cards.js";
import { initChart } from "./chart-panel.js";
import { initControls } from "./controls.js";
import { reload } from "./loading.js";
import { initRunDialog, showRun } from "./run-dialog.js";
import { initRunsTable } from "./runs-table.js";
import { initToken } from "./token.js";

initControls();
initChart();
initToken();
initRunsTable(showRun);
initRunDialog();
initCards();
reload();
