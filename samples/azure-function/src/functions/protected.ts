/** Registers the function with the Azure Functions host (v4 programming model). */
// @azure/functions is CommonJS: its default export carries `app`.
import azureFunctions from "@azure/functions";
import { protectedHandler } from "../handler.ts";

azureFunctions.app.http("protected", { methods: ["GET"], authLevel: "anonymous", route: "protected", handler: protectedHandler });
