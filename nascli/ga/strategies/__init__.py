"""ga/strategies"""
