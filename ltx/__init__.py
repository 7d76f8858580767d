"""The LTX-2 / LTX-2.3 port: configs, transformer, text connectors and checkpoint loading."""
