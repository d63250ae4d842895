"""Drives a FreeRouter gateway's embeddings API with the official OpenAI Python SDK and prints what
it saw as JSON.

Usage: python3 openai_embeddings_check.py BASE_URL
Calls, in order: the SDK's default (it asks for base64 and unpacks float32s), floats by alias for
a list of texts, token arrays, and two refusals (an empty input, an unknown model).
"""

import json
import sys

import openai
from openai import OpenAI


def main() -> None:
    client = OpenAI(base_url=sys.argv[1], api_key="unused-by-the-gateway", max_retries=0, timeout=30)

    raw = client.embeddings.with_raw_response.create(model="auto", input="hello")
    default = raw.parse()

    floats = client.embeddings.create(model="sim-embed", input=["hello", "world"], encoding_format="float")
    tokens = client.embeddings.create(model="auto", input=[[1, 2, 3], [4, 5]])

    refusals = {}
    for name, kwargs in {"empty": {"model": "auto", "input": ""},
                         "unknown": {"model": "text-embedding-ada-002", "input": "x"}}.items():
        try:
            client.embeddings.create(**kwargs)
            refusals[name] = None
        except openai.APIStatusError as error:
            refusals[name] = {"status": error.status_code, "param": error.body.get("param"),
                              "code": error.body.get("code")}

    print(json.dumps({
        "default_vector": list(default.data[0].embedding),
        "default_model": default.model,
        "default_usage": default.usage.prompt_tokens,
        "route_header": raw.headers.get("x-gateway-route"),
        "float_vectors": [list(d.embedding) for d in floats.data],
        "float_indexes": [d.index for d in floats.data],
        "token_vectors": [list(d.embedding) for d in tokens.data],
        "object": floats.object,
        "refusals": refusals,
    }))


if __name__ == "__main__":
    main()
