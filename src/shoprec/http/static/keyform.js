// The API key form both pages share: a labelled password field, Save and Forget buttons.
import { apiKey, setApiKey } from "./api.js";

export function keyForm(form, onChange) {
  const input = form.querySelector("input");
  const status = form.querySelector("[data-key-status]");
  const show = () => {
    status.textContent = apiKey() ? "A key is set for this tab." : "No key set.";
  };
  input.value = apiKey();
  show();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    show();
    onChange();
  });
  form.querySelector("[data-forget]").addEventListener("click", () => {
    input.value = "";
    setApiKey("");
    show();
    onChange();
  });
}
