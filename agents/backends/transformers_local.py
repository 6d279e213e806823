"""Local transformers models (text or vision-language) loaded from a local path, CPU or GPU.

``model`` is a folder (``config.json`` + weights) or a ``.gguf`` file (needs ``gguf``);
nothing is downloaded (``local_files_only``). Transformers has no native schema-constrained
decoding, so the schema goes into the system text and the first JSON object of the reply
is decoded with ``json.JSONDecoder.raw_decode``; validation and bounded re-asks happen in
the annotator like for every backend. The model loads once, lazily, under a lock.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from emoforge.agents.base import AnnotatorError, ModelReply, Prompt
from emoforge.agents.providers import ProviderSpec
from emoforge.configs.agents import AgentConfig
from emoforge.storage.records import ErrorKind


def build_messages(prompt: Prompt, with_images: bool) -> tuple[list[dict[str, Any]], list[Any]]:
    """Chat-template messages and the PIL images they reference (in order)."""
    system = f"{prompt.system}\n\nThe JSON schema of your reply:\n{json.dumps(prompt.schema, separators=(',', ':'))}"
    images: list[Any] = []
    if with_images and prompt.images:
        import io

        from PIL import Image

        content: list[dict[str, Any]] = [{"type": "text", "text": prompt.user}]
        for image in prompt.images:
            content.append({"type": "text", "text": f"Key frame at t={image.t_s:.2f} s:"})
            content.append({"type": "image"})
            images.append(Image.open(io.BytesIO(image.jpeg)).convert("RGB"))
        user: Any = content
    else:
        user = prompt.user
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ]
    for assistant, follow_up in prompt.messages_after:
        messages += [{"role": "assistant", "content": assistant}, {"role": "user", "content": follow_up}]
    return messages, images


def first_json_object(text: str) -> str:
    """The first complete JSON object in ``text`` (models often wrap it in prose or fences)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict):
            return text[start:end]
        start = text.find("{", end)
    return text  # let validation report what is wrong


class TransformersBackend:
    name = "transformers"

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any, bool] | None = None

    def _load(self) -> tuple[Any, Any, bool]:
        """(model, processor or tokenizer, is_vision_language)."""
        with self._lock:
            if self._loaded is not None:
                return self._loaded
            path = Path(self.config.model or "")
            if not path.exists():
                raise AnnotatorError(ErrorKind.model_unavailable, f"model path {path} does not exist")
            import transformers as tf

            kwargs: dict[str, Any] = {"local_files_only": True}
            folder = path
            if path.suffix == ".gguf":
                folder, kwargs["gguf_file"] = path.parent, path.name
            device = self.config.device
            try:
                config = tf.AutoConfig.from_pretrained(str(folder), **kwargs)
                vision = hasattr(config, "vision_config") and "visual" in self.config.modalities
                if vision:
                    processor = tf.AutoProcessor.from_pretrained(str(folder), **kwargs)
                    model = tf.AutoModelForImageTextToText.from_pretrained(
                        str(folder), device_map=device, torch_dtype="auto", **kwargs
                    )
                else:
                    processor = tf.AutoTokenizer.from_pretrained(str(folder), **kwargs)
                    model = tf.AutoModelForCausalLM.from_pretrained(
                        str(folder), device_map=device, torch_dtype="auto", **kwargs
                    )
            except (OSError, ValueError, ImportError) as exc:
                raise AnnotatorError(ErrorKind.model_unavailable, f"cannot load {path}: {exc}") from exc
            self._loaded = (model.eval(), processor, vision)
            return self._loaded

    def complete(self, prompt: Prompt, max_output_tokens: int, temperature: float) -> ModelReply:
        import torch

        model, processor, vision = self._load()
        messages, images = build_messages(prompt, with_images=vision)
        if vision:
            text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            inputs = processor(text=text, images=images or None, return_tensors="pt")
        else:
            inputs = processor.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        inputs = inputs.to(model.device)
        n_in = int(inputs["input_ids"].shape[-1])
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        try:
            with torch.inference_mode():
                out = model.generate(**inputs, max_new_tokens=max_output_tokens, **sampling)
        except torch.cuda.OutOfMemoryError as exc:
            raise AnnotatorError(ErrorKind.provider_error, "CUDA out of memory") from exc
        new_tokens = out[0, n_in:]
        decoded = processor.decode(new_tokens, skip_special_tokens=True)
        return ModelReply(
            text=first_json_object(decoded),
            input_tokens=n_in,
            output_tokens=int(new_tokens.shape[-1]),
            model=self.config.model,
        )

    def close(self) -> None:
        with self._lock:
            self._loaded = None


PROVIDER = ProviderSpec(
    name=TransformersBackend.name,
    kind="llm",
    chat=TransformersBackend,
    needs_model=True,
    # No audio or video processor wiring: it refuses clips instead of silently sending text only.
    clip_modalities=frozenset(),
)
