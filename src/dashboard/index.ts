/** The web dashboard: `startDashboard(troupe, { port, host, token })` → `{ url, close() }`. */
export { startDashboard, DEFAULT_DASHBOARD_PORT, type Dashboard, type DashboardOptions } from "./server.js";
