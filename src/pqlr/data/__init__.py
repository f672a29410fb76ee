"""pqlr.data"""
