"""pqlr.models"""
