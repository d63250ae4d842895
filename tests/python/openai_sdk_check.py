"""Drives a FreeRouter gateway with the official OpenAI Python SDK and prints what it saw as JSON.

Usage: python3 openai_sdk_check.py BASE_URL
Three calls, in order: a plain completion, a streamed completion (with usage), and a tool call.
"""

import json
import sys

from openai import OpenAI


def main() -> None:
    client = OpenAI(base_url=sys.argv[1], api_key="unused-by-the-gateway", max_retries=0, timeout=30)
    plain = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Say hello."}]
    )
    completion = plain.parse()
    stream = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Say hello slowly."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    streamed, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            streamed.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage.completion_tokens
    tools = [{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }]
    tool = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools
    )
    call = tool.choices[0].message.tool_calls[0]
    print(json.dumps({
        "content": completion.choices[0].message.content,
        "model": completion.model,
        "route_header": plain.headers.get("x-gateway-route"),
        "streamed": "".join(streamed),
        "stream_usage": usage,
        "tool_name": call.function.name,
        "tool_arguments": json.loads(call.function.arguments),
        "finish_reason": tool.choices[0].finish_reason,
    }))


if __name__ == "__main__":
    main()
