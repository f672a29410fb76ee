"""pqlr.deploy"""
