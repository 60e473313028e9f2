package config

var gitlabRunnerToken string = "glrt-M2NWZuXsfAtdWxbIBzuV" ⟦S⟧
var feedToken = "glft-spnsjaqsj2ep6pkbjx89" ⟦S⟧
const stripeWebhook = "whsec_AdvZ2HLOoOB40iOkOVt3TKzVQeF6vU6m" ⟦S⟧
var publicToken string = "pk_F6aXcHzxPPO6Hsa4lV0TLfdH" ⟦N⟧
var keyStr string = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=" ⟦N⟧
