"""Control of the running bot from outside the HTTP API: the command layer every transport
shares (``commands``) and the chat transports (``telegram``). Like ``api/``, this package
sees the bot only through ``runtime.view.BotView``."""
