// The `@anthropic-ai/sdk` npm package against the gateway. Reads FLOCK_* from the environment,
// makes one call in FLOCK_MODE (create | stream | tools | tools-stream) and prints the outcome as
// one JSON line.
"use strict";
const { Anthropic } = require("@anthropic-ai/sdk");

const client = new Anthropic({
  baseURL: process.env.FLOCK_BASE_URL,
  apiKey: process.env.FLOCK_API_KEY,
  timeout: 60_000,
  maxRetries: 0,
});
const mode = process.env.FLOCK_MODE;
const request = {
  model: process.env.FLOCK_MODEL,
  max_tokens: Number(process.env.FLOCK_MAX_TOKENS || 256),
  messages: [{ role: "user", content: process.env.FLOCK_PROMPT || "Say hi." }],
};
if (mode.startsWith("tools")) {
  request.tools = [{
    name: "get_weather",
    description: "Current weather in a city",
    input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  }];
}

function outcome(message, pieces) {
  return {
    text: message.content.filter((b) => b.type === "text").map((b) => b.text).join(""),
    tool_uses: message.content.filter((b) => b.type === "tool_use")
      .map((b) => ({ id: b.id, name: b.name, input: b.input })),
    stop_reason: message.stop_reason,
    usage: message.usage,
    pieces,
  };
}

async function main() {
  if (mode === "create" || mode === "tools") {
    return outcome(await client.messages.create(request), 1);
  }
  if (mode === "stream" || mode === "tools-stream") {
    // The SDK's helper checks the event order and assembles input_json_delta fragments.
    const stream = client.messages.stream(request);
    let pieces = 0;
    stream.on("text", () => { pieces += 1; });
    stream.on("inputJson", () => { pieces += 1; });
    return outcome(await stream.finalMessage(), pieces);
  }
  throw new Error(`unknown FLOCK_MODE ${mode}`);
}

main().then(
  (result) => { console.log(JSON.stringify(result)); },
  (error) => { console.error(error); process.exit(1); },
);
