"""Drives a FreeRouter gateway's Responses and legacy completions APIs with the official OpenAI
Python SDK and prints what it saw as JSON.

Usage: python3 openai_responses_check.py BASE_URL
Calls, in order: a plain response, a streamed one (raw events), a streamed one through the SDK's
accumulating helper, a function-tool round trip (two calls), a legacy completion, and a streamed
legacy completion.
"""

import json
import sys

from openai import OpenAI


def main() -> None:
    client = OpenAI(base_url=sys.argv[1], api_key="unused-by-the-gateway", max_retries=0, timeout=30)

    plain = client.responses.with_raw_response.create(
        model="auto", input="Say hello.", instructions="Be brief.", store=False
    )
    response = plain.parse()

    events = list(client.responses.create(model="auto", input="Say hello slowly.", stream=True))
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    completed = [e for e in events if e.type == "response.completed"]

    with client.responses.stream(model="auto", input="Say hello once more.") as stream:
        for _ in stream:
            pass
        helper = stream.get_final_response()

    tools = [{
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": False,
    }]
    question = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.responses.create(model="auto", input=question, tools=tools)
    call = next(item for item in first.output if item.type == "function_call")
    followup = question + [item.model_dump(exclude_none=True) for item in first.output] + [
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 24 C"}
    ]
    second = client.responses.create(model="auto", input=followup, tools=tools)

    completion = client.completions.create(model="auto", prompt="Once upon a time", max_tokens=40)
    chunks = list(client.completions.create(model="auto", prompt="Once upon a time", stream=True))

    print(json.dumps({
        "output_text": response.output_text,
        "model": response.model,
        "status": response.status,
        "route_header": plain.headers.get("x-gateway-route"),
        "usage_total": response.usage.total_tokens if response.usage else None,
        "event_types": [e.type for e in events],
        "sequence_numbers": [e.sequence_number for e in events],
        "streamed": streamed,
        "completed_text": completed[0].response.output_text if completed else None,
        "helper_text": helper.output_text,
        "tool_name": call.name,
        "tool_arguments": json.loads(call.arguments),
        "tool_call_id": call.call_id,
        "after_tool": second.output_text,
        "completion_text": completion.choices[0].text,
        "completion_object": completion.object,
        "completion_streamed": "".join(c.choices[0].text for c in chunks if c.choices),
    }))


if __name__ == "__main__":
    main()
