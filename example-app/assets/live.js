// Connects the live pages: the official phoenix_live_view client over the official phoenix
// Socket, both mapped by the page's import map. The page's CSRF token goes with every join.
import { Socket } from "phoenix";
import { LiveSocket } from "phoenix_live_view";

const csrfToken = document.querySelector("meta[name='csrf-token']").getAttribute("content");
const liveSocket = new LiveSocket("/live", Socket, { params: { _csrf_token: csrfToken } });
liveSocket.connect();
// For the browser's console and the tests: liveSocket.enableDebug().
window.liveSocket = liveSocket;
