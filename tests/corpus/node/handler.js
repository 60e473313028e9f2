'use strict';
const { DynamoDBClient, ScanCommand } = require('@aws-sdk/client-dynamodb');
const stripe = require('stripe')('sk_test_CGhS4hXz5gyoDOPc4Y0bixVSmiqoXna0tS7xfWi3lmWVGvxgGMiFr14HVC'); ⟦S⟧
const mongoose = require('mongoose');

const TABLE_NAME = process.env.TABLE_NAME || 'orders'; ⟦N⟧
const API_TOKEN = process.env.API_TOKEN; ⟦N⟧
const config = {
  region: 'us-east-1',
  credentials: {
    accessKeyId: 'AKIACZVW7TEDC57XQ4RR', ⟦S⟧
    secretAccessKey: '6hBoihQwUKFYByBCkP/qh0aY9hVDV+9jXLrlkEJ0', ⟦S⟧
  },
};
const partner = {
  baseUrl: 'https://api.partner.example.com/v1', ⟦N⟧
  apiKey: 'HrjMmH1gr6mzR1CWkNe01qLqJAUaq4KerDlkjRxn', ⟦S⟧
  apiKeyHeader: 'x-api-key', ⟦N⟧
  timeoutMs: 5000,
};
const db = { password: process.env.DB_PASSWORD || 'Zq8w!x2LmP' }; ⟦S⟧
const secretName = 'prod/orders/partner'; ⟦N⟧
const tokenExpirySeconds = 3600; ⟦N⟧

mongoose.connect('mongodb+srv://orders:p@ssw0rd-orders-77@cluster0.ab1cd.mongodb.net/orders'); ⟦S⟧
mongoose.connect(`mongodb+srv://orders:${process.env.MONGO_PASSWORD}@cluster0.ab1cd.mongodb.net/orders`); ⟦N⟧

exports.handler = async (event) => {
  const client = new DynamoDBClient(config);
  const out = await client.send(new ScanCommand({ TableName: TABLE_NAME }));
  const res = await fetch(partner.baseUrl, {
    headers: { Authorization: `Bearer ${API_TOKEN}`, 'x-api-key': partner.apiKey }, ⟦N⟧
  });
  return { statusCode: 200, body: JSON.stringify({ orders: out.Count, partner: res.status }) };
};
