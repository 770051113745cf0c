"""The domain: pure Python, no AWS. It talks to the world through the ports in each module."""
