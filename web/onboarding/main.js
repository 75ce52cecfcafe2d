// Entry point of the onboarding page: wire the flow (ui-v3n6) to the component (ui-w8p2).

import { mountOnboarding } from "./component.js";
import { OnboardingModule } from "./flow.js";

const flow = new OnboardingModule(window.onboardingKpi ?? {});
mountOnboarding(flow);
flow.start();
