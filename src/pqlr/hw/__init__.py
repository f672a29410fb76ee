"""pqlr.hw"""
