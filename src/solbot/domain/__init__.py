"""Pure domain model: values, instruments, messages, orders, positions, ledger.

Nothing here does I/O, reads a clock or imports asyncio; only the stdlib.
"""
