"""pqlr.compress"""
