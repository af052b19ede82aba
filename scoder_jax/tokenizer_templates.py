"""Chat formats per tokenizer family: the built-in templates, the stop tokens, family detection.

`FAMILIES` names the families `tokenizer.Tokenizer` knows; `BUILTIN_TEMPLATES[family]` is the jinja
chat template used when the model brings none; `FAMILY_STOP_TOKENS[family]` the tokens that end an
assistant turn; `detect_family(template, backend)` guesses the family of a tokenizer from its chat
template's text, else from the special tokens in its vocabulary.
"""

from __future__ import annotations

FAMILIES = ("deepseek-coder", "deepseek-coder-instruct", "chatml", "llama3", "llama2", "plain")

# Built-in chat templates (used only when the model brings none).

DEEPSEEK_CODER_SYSTEM_PROMPT = (
    "You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek "
    "Company, and you only answer questions related to computer science. For politically sensitive "
    "questions, security and privacy issues, and other non-computer science questions, you will "
    "refuse to answer"
)

# deepseek-ai/deepseek-coder-{1.3b,6.7b,33b}-instruct, tokenizer_config.json, verbatim.
DEEPSEEK_CODER_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}\n{% set add_generation_prompt = false %}\n{% endif %}\n"
    "{%- set ns = namespace(found=false) -%}\n{%- for message in messages -%}\n"
    "    {%- if message['role'] == 'system' -%}\n        {%- set ns.found = true -%}\n"
    "    {%- endif -%}\n{%- endfor -%}\n{{bos_token}}{%- if not ns.found -%}\n"
    "{{'" + DEEPSEEK_CODER_SYSTEM_PROMPT + "\\n'}}\n"
    "{%- endif %}\n{%- for message in messages %}\n    {%- if message['role'] == 'system' %}\n"
    "{{ message['content'] }}\n    {%- else %}\n        {%- if message['role'] == 'user' %}\n"
    "{{'### Instruction:\\n' + message['content'] + '\\n'}}\n        {%- else %}\n"
    "{{'### Response:\\n' + message['content'] + '\\n<|EOT|>\\n'}}\n        {%- endif %}\n"
    "    {%- endif %}\n{%- endfor %}\n{% if add_generation_prompt %}\n{{'### Response:'}}\n{% endif %}"
)

# ChatML as Qwen and SmolLM2 write it, without a default system prompt.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# meta-llama/Meta-Llama-3-8B-Instruct, tokenizer_config.json, verbatim.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

# meta-llama/Llama-2-7b-chat-hf, tokenizer_config.json, verbatim.
LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)

# For vocabularies with no known chat format: plain instruction/response text closed by EOS.
PLAIN_TEMPLATE = (
    "{% if bos_token is defined %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
    "{% else %}{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
)

BUILTIN_TEMPLATES = {
    "deepseek-coder": DEEPSEEK_CODER_TEMPLATE,
    "deepseek-coder-instruct": DEEPSEEK_CODER_TEMPLATE,
    "chatml": CHATML_TEMPLATE,
    "llama3": LLAMA3_TEMPLATE,
    "llama2": LLAMA2_TEMPLATE,
    "plain": PLAIN_TEMPLATE,
}

# Tokens that end an assistant turn, per family (those present in the vocabulary are used).
FAMILY_STOP_TOKENS = {
    "deepseek-coder": ("<|EOT|>",),
    "deepseek-coder-instruct": ("<|EOT|>",),
    "chatml": ("<|im_end|>", "<|endoftext|>"),
    "llama3": ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"),
    "llama2": (),
    "plain": (),
}


def detect_family(template: str | None, backend) -> str:
    """From the chat template's text, else from the special tokens in the vocabulary."""
    if template:
        if "<|EOT|>" in template or "### Instruction" in template and "### Response" in template:
            return "deepseek-coder-instruct"
        if "<|im_start|>" in template:
            return "chatml"
        if "<|start_header_id|>" in template:
            return "llama3"
        if "[INST]" in template:
            return "llama2"
        return "plain"
    if backend.token_to_id("<|EOT|>") is not None:
        return "deepseek-coder-instruct"
    if backend.token_to_id("<|start_header_id|>") is not None:
        return "llama3"
    if backend.token_to_id("<|im_start|>") is not None:
        return "chatml"
    if backend.token_to_id("<｜begin▁of▁sentence｜>") is not None:
        return "deepseek-coder"
    return "plain"
