// Entry point of the KPI dashboard: wire the state (state.js) to the view (view.js).

import { DashboardModule } from "./state.js";
import { mountDashboard } from "./view.js";

const dashboard = new DashboardModule(window.onboardingKpi ?? {});
mountDashboard(dashboard);
dashboard.start();
