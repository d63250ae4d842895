// The playground: posts the conversation to /v1/chat/completions with stream: true, appends the
// answer as its server-sent events arrive, and shows which route served it (response headers).
// Text is only ever set with textContent, so nothing a model says can become markup.
"use strict";
(function () {
  const form = document.getElementById("chat");
  if (!form) return;
  const $ = (id) => document.getElementById(id);
  const transcript = $("transcript");
  const error = $("error");
  let history = [];

  function bubble(role, text) {
    const div = document.createElement("div");
    div.className = "bubble " + role;
    div.textContent = text;
    transcript.appendChild(div);
    return div;
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
  }

  $("reset").addEventListener("click", () => {
    history = [];
    transcript.textContent = "";
    for (const id of ["route", "attempts", "trail"]) $(id).textContent = "—";
    error.hidden = true;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const prompt = $("prompt").value.trim();
    if (!prompt) return;
    error.hidden = true;
    const old = $("output");
    if (old) old.removeAttribute("id");
    bubble("user", prompt);
    const output = bubble("assistant", "");
    output.id = "output";
    output.dataset.state = "streaming";
    history.push({ role: "user", content: prompt });
    $("prompt").value = "";
    $("send").disabled = true;

    const headers = { "content-type": "application/json" };
    const key = $("api-key");
    if (key && key.value) headers["authorization"] = "Bearer " + key.value;
    if ($("strict").checked) headers["x-freerouter-strict"] = "true";
    const body = { model: $("model").value, stream: true, messages: history };
    let answer = "";
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      });
      $("route").textContent = response.headers.get("x-gateway-route") || "—";
      $("attempts").textContent = response.headers.get("x-gateway-attempts") || "—";
      $("trail").textContent = response.headers.get("x-gateway-trail") || "—";
      if (!response.ok) {
        let message = response.status + " " + response.statusText;
        try {
          const json = await response.json();
          if (json.error && json.error.message) message = json.error.message;
        } catch (_) { /* not JSON: keep the status line */ }
        throw new Error(message);
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const eventText = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of eventText.split("\n")) {
            if (!line.startsWith("data:")) continue;
            const data = line.slice(5).trim();
            if (data === "[DONE]") continue;
            let chunk;
            try { chunk = JSON.parse(data); } catch (_) { continue; }
            if (chunk.error) throw new Error(chunk.error.message || "the stream failed");
            const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
            if (delta && typeof delta.content === "string") {
              answer += delta.content;
              output.textContent = answer;
            }
          }
        }
      }
      history.push({ role: "assistant", content: answer });
      output.dataset.state = "done";
    } catch (e) {
      history.pop();
      output.dataset.state = "error";
      showError(e.message || String(e));
    } finally {
      $("send").disabled = false;
    }
  });
})();
