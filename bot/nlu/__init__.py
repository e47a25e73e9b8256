"""Understanding Chinese sales chat: numbers, durations, amounts and dates (pure functions, no I/O).

Intents and customer matching (jieba, built once per process) arrive with the capture flows.
"""
