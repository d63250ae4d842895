"""Drives a FreeRouter gateway with the official Anthropic Python SDK and prints what it saw as JSON.

Usage: python3 anthropic_sdk_check.py BASE_URL API_KEY
BASE_URL is the gateway's root (the SDK adds /v1/messages itself). In order: a plain message, a
streamed one, a tool call, its tool_result answered, a streamed tool call, count_tokens, a bad
request, the model list.
"""

import json
import sys

import anthropic
from anthropic import Anthropic

TOOLS = [{
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]
ASK = [{"role": "user", "content": "Weather in Paris?"}]


def main() -> None:
    client = Anthropic(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0, timeout=30)
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=256, messages=[{"role": "user", "content": "Say hello."}]
    )
    plain = raw.parse()

    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=256, messages=[{"role": "user", "content": "Say hello slowly."}]
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()

    tool = client.messages.create(model="claude-sonnet-4-5", max_tokens=256, messages=ASK, tools=TOOLS)
    call = next(block for block in tool.content if block.type == "tool_use")
    answered = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=256,
        tools=TOOLS,
        messages=ASK + [
            {"role": "assistant", "content": tool.content},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": [{"type": "text", "text": "18C"}]}
            ]},
        ],
    )

    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=256, messages=ASK, tools=TOOLS) as stream:
        streamed_tool = stream.get_final_message()
    streamed_call = next(block for block in streamed_tool.content if block.type == "tool_use")

    counted = client.messages.count_tokens(model="claude-sonnet-4-5", messages=ASK, tools=TOOLS)

    try:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[])
        bad = None
    except anthropic.BadRequestError as error:
        bad = {"status": error.status_code, "type": error.body["error"]["type"]}

    models = [model.id for model in client.models.list()]

    print(json.dumps({
        "text": plain.content[0].text,
        "model": plain.model,
        "stop_reason": plain.stop_reason,
        "route_header": raw.headers.get("x-gateway-route"),
        "streamed": streamed,
        "stream_stop_reason": final.stop_reason,
        "stream_output_tokens": final.usage.output_tokens,
        "tool_stop_reason": tool.stop_reason,
        "tool_name": call.name,
        "tool_input": call.input,
        "answered": answered.content[0].text,
        "streamed_tool_input": streamed_call.input,
        "streamed_tool_stop_reason": streamed_tool.stop_reason,
        "input_tokens": counted.input_tokens,
        "bad_request": bad,
        "models": models,
    }))


if __name__ == "__main__":
    main()
