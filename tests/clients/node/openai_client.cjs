// The `openai` npm package against the gateway. Reads FLOCK_* from the environment, makes one
// call in FLOCK_MODE (chat | stream | tools | tools-stream) and prints the outcome as one JSON line.
"use strict";
const { OpenAI } = require("openai");

const client = new OpenAI({
  baseURL: process.env.FLOCK_BASE_URL,
  apiKey: process.env.FLOCK_API_KEY,
  timeout: 60_000,
  maxRetries: 0,
});
const mode = process.env.FLOCK_MODE;
const request = {
  model: process.env.FLOCK_MODEL,
  messages: [{ role: "user", content: process.env.FLOCK_PROMPT || "Say hi." }],
};
if (process.env.FLOCK_MAX_TOKENS) request.max_tokens = Number(process.env.FLOCK_MAX_TOKENS);
if (mode.startsWith("tools")) {
  request.tools = [{
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather in a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  }];
}

function outcome(message, finishReason, usage, pieces) {
  return {
    text: message.content ?? "",
    tool_calls: (message.tool_calls ?? []).map((c) => ({
      id: c.id, name: c.function.name, arguments: c.function.arguments,
    })),
    finish_reason: finishReason,
    usage: usage ?? null,
    pieces,
  };
}

async function main() {
  if (mode === "chat" || mode === "tools") {
    const completion = await client.chat.completions.create(request);
    const choice = completion.choices[0];
    return outcome(choice.message, choice.finish_reason, completion.usage, 1);
  }
  if (mode === "stream") {
    const stream = await client.chat.completions.create({
      ...request, stream: true, stream_options: { include_usage: true },
    });
    let text = "";
    let finishReason = null;
    let usage = null;
    let pieces = 0;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        if (choice.delta.content) { text += choice.delta.content; pieces += 1; }
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
    }
    return outcome({ content: text }, finishReason, usage, pieces);
  }
  if (mode === "tools-stream") {
    // The SDK's helper assembles the tool-call fragments itself.
    const runner = client.chat.completions.stream({ ...request, stream_options: { include_usage: true } });
    let pieces = 0;
    runner.on("chunk", () => { pieces += 1; });
    const completion = await runner.finalChatCompletion();
    const choice = completion.choices[0];
    return outcome(choice.message, choice.finish_reason, completion.usage, pieces);
  }
  throw new Error(`unknown FLOCK_MODE ${mode}`);
}

main().then(
  (result) => { console.log(JSON.stringify(result)); },
  (error) => { console.error(error); process.exit(1); },
);
