// A resource server built only from the official x402 v2 packages (@x402/express and
// @x402/core, pinned in package.json): `GET /weather` is paid through the facilitator at
// FACILITATOR_URL, `GET /free` is not. The only rollup-specific part is the server side of the
// `exact` scheme on the rollup's network: its price is an explicit atomic amount of the
// rollup's asset (docs/API.md, "x402 facilitator").
//
//   FACILITATOR_URL=http://127.0.0.1:8080/x402 NETWORK=arollup:31337-... ASSET=token \
//   PAY_TO=2 PRICE=1000 PORT=4021 node interop/x402/server.mjs
//
// Prints `listening on <port>` once it serves. The middleware asks the facilitator's
// /supported at start-up and exits if it does not settle NETWORK.
import express from "express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return v;
}

const facilitatorUrl = env("FACILITATOR_URL");
const network = env("NETWORK");
const asset = env("ASSET");
const payTo = env("PAY_TO");
const price = env("PRICE");
const port = Number(env("PORT"));

// The resource-server half of `exact` on the rollup: prices are atomic amounts of one asset,
// requirements go out as configured (the facilitator's kind adds nothing to them).
class RollupExactServer {
  scheme = "exact";
  defaultAssetTransferMethod = "default";
  paymentFlows = { default: { supported: ["authorization"], default: "authorization" } };

  async parsePrice(p, onNetwork) {
    if (p && typeof p === "object" && "amount" in p) {
      return { amount: String(p.amount), asset: p.asset ?? asset, extra: p.extra ?? {} };
    }
    throw new Error(`prices on ${onNetwork} are atomic {amount, asset}, not ${JSON.stringify(p)}`);
  }

  getAssetDecimals() {
    return 6;
  }

  async enhancePaymentRequirements(requirements) {
    return requirements;
  }
}

const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: facilitatorUrl }));
server.register(network, new RollupExactServer());

const routes = {
  "GET /weather": {
    accepts: {
      scheme: "exact",
      network,
      payTo,
      price: { amount: price, asset },
      maxTimeoutSeconds: 60,
    },
    description: "Weather data",
    mimeType: "application/json",
  },
};

const app = express();
app.use(paymentMiddleware(routes, server));
app.get("/weather", (_req, res) => res.json({ weather: "sunny", temperature: 21 }));
app.get("/free", (_req, res) => res.json({ free: true }));
app.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));
